// Server load benchmark (DESIGN.md budgets): N nodes × G GPUs at 1 Hz from the simulator,
// against (a) a bare Socket.IO server that only acks — the baseline, measured in the same run —
// and (b) gpupulse-server writing to a real influxd. Prints CPU (% of one core), RSS, freshness
// (agent sample → dashboard delta) and checks that every acked sample is in InfluxDB.
//
//   pnpm --filter @gpupulse/test exec tsx bench/server-bench.ts      (env: NODES=1000 GPUS=8 SECONDS=60)
//
// The server runs as in production: the bundle, built first (BENCH_SERVER=tsx: server/bin through tsx).
//
// More env: BENCH_NODE_OPTIONS='--max-old-space-size=256' passes V8 flags to the server; BENCH_BARE=0 skips the baseline; BENCH_CPU_PROF=<dir> / BENCH_HEAP_PROF=<dir> record a
// CPU profile / sampling heap profile of the server (bench/profile-preload.mjs), written there when it stops.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connectDashboard } from '../src/support/dashboard.ts';
import { rows, startInfluxd } from '../src/support/influxd.ts';
import { repoRoot } from '../src/support/paths.ts';
import { type Proc, startProcess, startServer, startSim, stopAll } from '../src/support/processes.ts';
import { freePort, sleep, waitFor } from '../src/support/wait.ts';
import { cpuPercentOver, cpuSeconds, peakRssMiB, percentile } from './proc-stats.ts';

const NODES = Number(process.env.NODES ?? 1000);
const GPUS = Number(process.env.GPUS ?? 8);
const SECONDS = Number(process.env.SECONDS ?? 60);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 15_000);
const BARE = process.env.BENCH_BARE !== '0';
const CPU_PROF = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : null;
const HEAP_PROF = process.env.BENCH_HEAP_PROF ? resolve(process.env.BENCH_HEAP_PROF) : null;

/** The pid of this process's own child named `comm` (not another bench's), NaN when none. */
function ownChild(comm: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (name === comm && ppid === process.pid) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return Number.NaN;
}

/** Bytes a process read and wrote through syscalls (sockets included), from /proc/<pid>/io. */
function ioBytes(pid: number): { read: number; written: number } {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const v = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { read: v('rchar'), written: v('wchar') };
}

function simStats(
  sim: Proc,
  msg = 'sim stats',
): { connected: number; sent: number; acked: number; rejected: number } {
  const lines = sim
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`));
  const last = lines.at(-1);
  return last ? JSON.parse(last) : { connected: 0, sent: 0, acked: 0, rejected: 0 };
}

async function waitConnected(sim: Proc, server?: Proc): Promise<void> {
  try {
    await waitFor('all simulated nodes connected', () => simStats(sim).connected >= NODES, 120_000, 1000);
  } catch (err) {
    console.error(`sim: ${JSON.stringify(simStats(sim))}\n${sim.output().slice(-2000)}`);
    if (server) console.error(`server: ${server.output().slice(-3000)}`);
    throw err;
  }
}

interface Baseline {
  cpu: number;
  rss: number;
  /** CPU ms per report handled: under CPU contention (a shared machine) the fair comparison. */
  cpuMsPerReport: number;
  readPerGpuSample: number;
}

async function baseline(): Promise<Baseline> {
  const port = await freePort();
  const bare = startProcess(process.execPath, [
    '--import',
    'tsx',
    resolve(repoRoot, 'test/bench/bare-socketio-server.ts'),
    String(port),
  ]);
  await waitFor('bare server', () => bare.output().includes('listening'), 20_000);
  const sim = startSim(`http://127.0.0.1:${port}`, [
    '--nodes',
    String(NODES),
    '--gpus-per-node',
    String(GPUS),
    '--prefix',
    'bare',
  ]);
  await waitConnected(sim);
  await sleep(WARMUP_MS);
  const pid = bare.child.pid!;
  // The bare server reads nothing but the agents' frames: its read bytes per acked GPU-sample are
  // the wire cost agent → server (WebSocket framing included).
  const io0 = ioBytes(pid);
  const acked0 = simStats(sim).acked;
  const cpu0 = cpuSeconds(pid);
  const cpu = await cpuPercentOver(pid, SECONDS * 1000);
  const cpuMs = (cpuSeconds(pid) - cpu0) * 1000;
  const io1 = ioBytes(pid);
  // The sim logs its counters every 10 s: the acks of the window are read from the same lines.
  const acked = simStats(sim).acked - acked0;
  const rss = peakRssMiB(pid);
  await sim.stop();
  await bare.stop();
  return {
    cpu,
    rss,
    cpuMsPerReport: cpuMs / Math.max(1, acked),
    readPerGpuSample: (io1.read - io0.read) / Math.max(1, acked * GPUS),
  };
}

async function gpupulse() {
  const influx = await startInfluxd();
  // Profiles through the inspector (bench/profile-preload.mjs): `--cpu-prof` is refused in NODE_OPTIONS.
  const profiling = CPU_PROF !== null || HEAP_PROF !== null;
  // What production runs: the bundle (`pnpm --filter @gpupulse/server build`), built here first;
  // BENCH_SERVER=tsx measures the development entry (server/bin, TypeScript through tsx) instead.
  const mode = process.env.BENCH_SERVER === 'tsx' ? 'tsx' : 'bundle';
  if (mode === 'bundle') {
    execFileSync(process.execPath, [resolve(repoRoot, 'server/scripts/build.mjs')], { stdio: 'inherit' });
  }
  // BENCH_NODE_OPTIONS: V8 flags for the server (e.g. the unit's --max-old-space-size).
  const nodeOptions = [
    profiling ? `--import ${pathToFileURL(resolve(repoRoot, 'test/bench/profile-preload.mjs')).href}` : '',
    process.env.BENCH_NODE_OPTIONS ?? '',
  ]
    .filter((o) => o !== '')
    .join(' ');
  console.log(
    `gpupulse-server: ${mode === 'bundle' ? 'bundle (server/dist/gpupulse-server.mjs)' : 'tsx (server/bin)'}${nodeOptions ? ` (NODE_OPTIONS: ${nodeOptions})` : ''}`,
  );
  const server = await startServer(
    {
      GPUPULSE_INFLUX_URL: influx.url,
      GPUPULSE_LOG_LEVEL: 'warn',
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      ...(CPU_PROF ? { BENCH_CPU_PROF: CPU_PROF } : {}),
      ...(HEAP_PROF ? { BENCH_HEAP_PROF: HEAP_PROF } : {}),
    },
    mode === 'bundle' ? { entry: resolve(repoRoot, 'server/dist/gpupulse-server.mjs') } : {},
  );
  const sim = startSim(server.url, [
    '--nodes',
    String(NODES),
    '--gpus-per-node',
    String(GPUS),
    '--prefix',
    'load',
  ]);
  await waitConnected(sim, server);
  await sleep(WARMUP_MS);

  const dash = connectDashboard(server.url);
  const lags: number[] = [];
  let deltaBytes = 0;
  let deltaCount = 0;
  let gpuSamplesSeen = 0;
  const seen = new Map<string, number>();
  dash.socket.on('fleet:delta', (d) => {
    const now = Date.now();
    for (const n of [...d.nodes, ...(d.patches ?? [])]) {
      const ts = n.lastSampleTs;
      if (typeof ts === 'number' && seen.get(n.node) !== ts) {
        seen.set(n.node, ts);
        lags.push(now - ts);
        gpuSamplesSeen += GPUS;
      }
    }
    deltaBytes += JSON.stringify(d).length;
    deltaCount++;
  });
  const influxPid = ownChild('influxd');
  const pid = server.child.pid!;
  const acked0 = simStats(sim).acked;
  const influxCpu0 = Number.isFinite(influxPid) ? cpuSeconds(influxPid) : Number.NaN;
  const reports = async () =>
    Number(
      /^gpupulse_sample_reports_total (\S+)$/m.exec(
        await (await fetch(`${server.url}/metrics`)).text(),
      )?.[1] ?? Number.NaN,
    );
  const reports0 = await reports();
  const serverCpu0 = cpuSeconds(pid);
  const cpu = await cpuPercentOver(pid, SECONDS * 1000);
  const cpuMsPerReport = ((cpuSeconds(pid) - serverCpu0) * 1000) / Math.max(1, (await reports()) - reports0);
  const influxCpu = Number.isFinite(influxPid)
    ? ((cpuSeconds(influxPid) - influxCpu0) / SECONDS) * 100
    : Number.NaN;
  const rss = peakRssMiB(pid);
  dash.close();
  await sim.stop();
  // Everything acked must reach InfluxDB: wait until the write buffer and spool are empty.
  const drainStart = Date.now();
  const backlog = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const v = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    return v('gpupulse_write_buffer_points') + v('gpupulse_spool_points');
  };
  await waitFor('the write backlog to drain', async () => (await backlog()) === 0, 300_000, 500);
  const drainSeconds = (Date.now() - drainStart) / 1000;
  const stats = simStats(sim, 'stopping');
  const count = Number(
    rows(await influx.query(`SELECT count("utilization_gpu") FROM "nvidia_smi" WHERE "host" =~ /^load-/`))[0]
      ?.count ?? 0,
  );
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  // A profiled server writes its profile on exit: give it time.
  await server.stop(profiling ? 60_000 : undefined);
  await influx.stop();
  return {
    cpuMsPerReport,
    deltas: deltaCount,
    deltaBytesPerGpuSample: deltaBytes / Math.max(1, gpuSamplesSeen),
    cpu,
    rss,
    influxCpu,
    lags,
    drainSeconds,
    deltaKiB: deltaBytes / Math.max(1, deltaCount) / 1024,
    sent: stats.sent,
    acked: stats.acked,
    ackedInWindow: stats.acked - acked0,
    rejected: simStats(sim).rejected,
    count,
    metrics,
  };
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
try {
  console.log(
    `server benchmark: ${NODES} nodes × ${GPUS} GPUs at 1 Hz, ${SECONDS} s measured after ${WARMUP_MS / 1000} s warm-up`,
  );
  const base: Baseline = BARE
    ? await baseline()
    : { cpu: Number.NaN, rss: Number.NaN, cpuMsPerReport: Number.NaN, readPerGpuSample: Number.NaN };
  if (BARE) console.log(`baseline: ${JSON.stringify(base)}`);
  const g = await gpupulse();
  const drops = g.metrics.split('\n').filter((l) => /drop/i.test(l) && !l.startsWith('#'));
  console.log('');
  console.log('| process | CPU (% of one core) | peak RSS (MiB) |');
  console.log('|---|---|---|');
  console.log(`| bare Socket.IO server, ack only (baseline) | ${fmt(base.cpu)} | ${fmt(base.rss, 0)} |`);
  console.log(
    `| gpupulse-server (validate, fleet state, attribution, InfluxDB writes) | ${fmt(g.cpu)} | ${fmt(g.rss, 0)} |`,
  );
  console.log(`| influxd 1.6.7 | ${fmt(g.influxCpu)} | – |`);
  console.log('');
  console.log(`ratio gpupulse / bare: ${fmt(g.cpu / base.cpu, 2)}×`);
  console.log(
    `CPU per report (1 sample of ${GPUS} GPUs): gpupulse ${fmt(g.cpuMsPerReport, 3)} ms, bare ${fmt(base.cpuMsPerReport, 3)} ms: ${fmt(g.cpuMsPerReport / base.cpuMsPerReport, 2)}× (fair under CPU contention; at ${NODES} reports/s: ${fmt((g.cpuMsPerReport * NODES) / 10, 1)} % vs ${fmt((base.cpuMsPerReport * NODES) / 10, 1)} % of a core)`,
  );
  console.log(
    `acked in the measured window: ${g.ackedInWindow} of ${NODES * SECONDS} expected; fleet:delta received: ${g.deltas}`,
  );
  console.log(
    `freshness sample → dashboard (ms): p50 ${fmt(percentile(g.lags, 50), 0)}, p99 ${fmt(percentile(g.lags, 99), 0)}, max ${fmt(Math.max(...g.lags), 0)} (n=${g.lags.length})`,
  );
  console.log(`write backlog drained ${fmt(g.drainSeconds, 1)} s after the load stopped`);
  console.log(`fleet:delta size: ${fmt(g.deltaKiB, 0)} KiB per delta (JSON)`);
  console.log(
    `wire bytes per GPU-sample: agent → server ${fmt(base.readPerGpuSample, 0)} (bare server's reads), server → wall ${fmt(g.deltaBytesPerGpuSample, 0)} (fleet:delta JSON)`,
  );
  console.log(
    `samples sent ${g.sent}, acked ${g.acked} (rejected ${g.rejected}); nvidia_smi points in InfluxDB: ${g.count} = ${fmt(g.count / GPUS, 0)} samples × ${GPUS} GPUs`,
  );
  const ok = g.count >= g.acked * GPUS && g.count <= g.sent * GPUS;
  console.log(`every acked sample stored (acked ≤ stored ≤ sent): ${ok ? 'yes' : 'NO'}`);
  if (drops.length) console.log(`drop counters:\n${drops.join('\n')}`);
} finally {
  await stopAll();
}
