// Agent cost benchmark (issue 3): gpupulse-agent at 1 Hz for BENCH_SECONDS (default 120 s) with the
// fake nvidia-smi serving 8 GPUs and 50 GPU processes (real pids of sleeping processes, so the /proc
// reads are real), against a real gpupulse-server; Debian's netdata (default config, web bound to
// 127.0.0.1) measured in the same run on the same machine.
//
//   pnpm --filter @gpupulse/test exec tsx bench/agent-bench.ts
//
// CPU is % of one core from /proc/<pid>/stat (utime+stime) over the window. "agent" is the agent
// process alone; "children" is what its nvidia-smi children cost (here the FAKE nvidia-smi, itself
// a node process, whose cost is not the agent's: the real nvidia-smi is a small C program). Peak RSS
// is VmHWM. BENCH_NETDATA=0 skips netdata; netdata is installed with apt-get when missing.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fakeNvidiaSmi, repoRoot } from '../src/support/paths.ts';
import { AGENT_TOKEN, startAgent, startProcess, startServer, stopAll } from '../src/support/processes.ts';
import { sleep, waitFor } from '../src/support/wait.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 120);
const WARMUP_S = Number(process.env.BENCH_WARMUP_SECONDS ?? 15);
const GPUS = 8;
const PROCS = 50;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

interface Times {
  self: number;
  reapedChildren: number;
}

function stat(pid: number): { times: Times; ppid: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17, ppid 4
    return {
      ppid: Number(f[1]),
      times: {
        self: (Number(f[11]) + Number(f[12])) / CLK_TCK,
        reapedChildren: (Number(f[13]) + Number(f[14])) / CLK_TCK,
      },
    };
  } catch {
    return null;
  }
}

function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) parent.set(Number(name), s.ppid);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [pid, pp] of parent) {
      if (pp === p) {
        out.push(pid);
        walk(pid);
      }
    }
  };
  walk(root);
  return out;
}

function hwmBytes(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds of a process tree: the root alone, and its children (live + reaped). */
function treeTimes(root: number): { self: number; children: number; live: Map<number, number> } {
  const r = stat(root);
  const live = new Map<number, number>();
  for (const pid of descendants(root)) {
    const s = stat(pid);
    if (s) live.set(pid, s.times.self);
  }
  return { self: r?.times.self ?? 0, children: r?.times.reapedChildren ?? 0, live };
}

interface Row {
  what: string;
  cpuPercent: number;
  childrenCpuPercent: number | null;
  peakRssMB: number | null;
}

async function measure(what: string, root: number, seconds: number, withChildren: boolean): Promise<Row> {
  const a = treeTimes(root);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const b = treeTimes(root);
  const wall = (performance.now() - t0) / 1000;
  let children = b.children - a.children; // children reaped during the window (compute-apps calls)
  for (const [pid, t] of b.live) children += t - (a.live.get(pid) ?? 0); // live ones (loop child)
  const rss = hwmBytes(root);
  return {
    what,
    cpuPercent: Math.round(((b.self - a.self) / wall) * 10_000) / 100,
    childrenCpuPercent: withChildren ? Math.round((children / wall) * 10_000) / 100 : null,
    peakRssMB: rss === null ? null : Math.round((rss / 1024 / 1024) * 10) / 10,
  };
}

function ensureNetdata(): string | null {
  const bin = ['/usr/sbin/netdata', '/usr/bin/netdata'].find((p) => existsSync(p));
  if (bin) return bin;
  try {
    console.error('netdata missing: apt-get install -y netdata');
    execFileSync('apt-get', ['install', '-y', '-qq', 'netdata'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch {
    return null;
  }
  return ['/usr/sbin/netdata', '/usr/bin/netdata'].find((p) => existsSync(p)) ?? null;
}

async function main(): Promise<void> {
  const sleepers: ChildProcess[] = [];
  for (let i = 0; i < PROCS; i++) {
    sleepers.push(
      spawn('sleep', ['100000'], {
        stdio: 'ignore',
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          GPUPULSE_PROJECT: `bench-${i % 7}`,
          SLURM_JOB_ID: String(1000 + i),
        },
      }),
    );
  }
  const uuid = (g: number) => `GPU-00000000-0000-0000-0000-00000000${g.toString(16).padStart(4, '0')}`;
  const apps = sleepers.map((s, i) => ({
    gpu_uuid: uuid(i % GPUS),
    pid: s.pid,
    process_name: `python train_${i}.py`,
    used_gpu_memory: 1000 + i * 10,
  }));

  let netdata: ChildProcess | null = null;
  let agentMode = 'bundle';
  const rows: Row[] = [];
  try {
    const server = await startServer();
    const fakeEnv = {
      FAKE_NVIDIA_SMI_GPUS: String(GPUS),
      FAKE_NVIDIA_SMI_APPS: JSON.stringify(apps),
      GPUPULSE_LOG_LEVEL: 'warn',
    };
    // What production runs: the bundle (`pnpm --filter @gpupulse/agent build`); BENCH_AGENT=tsx
    // measures the development entry (TypeScript through tsx) instead.
    const mode = process.env.BENCH_AGENT === 'tsx' ? 'tsx' : 'bundle';
    let agent: ReturnType<typeof startAgent>;
    if (mode === 'bundle') {
      execFileSync(process.execPath, [join(repoRoot, 'agent/scripts/build.mjs')], { stdio: 'inherit' });
      const prof = process.env.BENCH_CPU_PROF
        ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
        : [];
      // the node flags of agent/gpupulse-agent.service (a small young generation: the heap is small)
      const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=1')
        .split(' ')
        .filter(Boolean);
      agent = startProcess(
        process.execPath,
        [
          ...nodeFlags,
          ...prof,
          join(repoRoot, 'agent/dist/gpupulse-agent.mjs'),
          ...['--server', server.url, '--token', AGENT_TOKEN, '--node', 'bench-node', '--interval', '1000'],
          ...['--nvidia-smi', fakeNvidiaSmi, '--kmsg', 'off'],
        ],
        fakeEnv,
      );
    } else {
      agent = startAgent({
        server: server.url,
        node: 'bench-node',
        intervalMs: 1000,
        extraArgs: ['--kmsg', 'off'],
        env: fakeEnv,
      });
    }
    agentMode = mode;
    const nd = process.env.BENCH_NETDATA === '0' ? null : ensureNetdata();
    if (nd) {
      // default config, web bound to 127.0.0.1, in the foreground (-D)
      netdata = spawn(nd, ['-D', '-W', 'set', 'web', 'bind to', '127.0.0.1'], { stdio: 'ignore' });
    }
    await waitFor(
      'the bench node with 8 GPUs and 50 processes on the server',
      async () => {
        const r = await fetch(`${server.url}/api/v1/fleet`);
        const body = (await r.json()) as {
          nodes?: Array<{ node: string; gpus: Array<{ processCount?: number }> }>;
        };
        const n = body.nodes?.find((x) => x.node === 'bench-node');
        return n && n.gpus.length === GPUS;
      },
      60_000,
      500,
    );
    console.error(
      `warm-up ${WARMUP_S} s, then ${SECONDS} s measured (agent pid ${agent.child.pid}, token ${AGENT_TOKEN})`,
    );
    await sleep(WARMUP_S * 1000);
    const agentPid = agent.child.pid as number;
    const measures: Array<Promise<Row>> = [
      measure(`gpupulse-agent, ${agentMode} (8 GPUs, 50 processes, 1 Hz)`, agentPid, SECONDS, true),
    ];
    if (netdata?.pid) measures.push(measure('netdata (Debian, default config)', netdata.pid, SECONDS, true));
    rows.push(...(await Promise.all(measures)));
    const out = agent.output();
    if (/"level":50/.test(out)) console.error(`agent logged errors:\n${out.slice(-2000)}`);
  } finally {
    netdata?.kill('SIGTERM');
    if (process.env.BENCH_CPU_PROF) await sleep(500);
    for (const s of sleepers) s.kill('SIGKILL');
    await stopAll();
  }

  const cores = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)?.length ?? 0;
  const node = process.version;
  console.log(
    `\n${SECONDS} s at 1 Hz on ${cores} cores, Node ${node}, ${new Date().toISOString().slice(0, 10)}\n`,
  );
  console.log('| process | CPU (% of one core) | children CPU (% of one core) | peak RSS (VmHWM) |');
  console.log('|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.what} | ${r.cpuPercent.toFixed(2)} % | ${r.childrenCpuPercent === null ? '–' : `${r.childrenCpuPercent.toFixed(2)} %`} | ${r.peakRssMB ?? '?'} MB |`,
    );
  process.exit(0);
}

await main();
