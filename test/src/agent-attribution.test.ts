// Attribution facts on real processes: real /proc, a second Unix user, environment variables, and
// Slurm-, Kubernetes- and Docker-shaped cgroups created for the test (cgroup v1 `pids` hierarchy and
// the v2 hierarchy, whichever this machine has). The fake nvidia-smi reports the real pids;
// `gpupulse-agent --once` is the system under test and its JSON output is checked fact by fact.
// Needs root (CI runs as root); without it the test says so and is skipped.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GpuProcess, type Sample, SampleSchema } from '@gpupulse/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBin, fakeNvidiaSmi } from './support/paths.ts';
import { sleep } from './support/wait.ts';

const isRoot = process.getuid?.() === 0;
const USER2 = 'gpupulse-t2';
const POD_UID = '6d1c2b3a-4e5f-4a7b-8c9d-0e1f2a3b4c5d';
const POD_UID2 = '0f8e4b1c-2a3d-4e5f-8a9b-0c1d2e3f4a5b';
const CTR = (c: string) => c.repeat(64);
const SLUID = 'sJ0K3ZQ8WH4R2';

interface Layout {
  /** cgroup v1 hierarchy to use (pids), when mounted. */
  v1: string | null;
  /** cgroup v2 root (`/sys/fs/cgroup/unified` on hybrid systems, `/sys/fs/cgroup` on pure v2). */
  v2: string | null;
}

function cgroupLayout(): Layout {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
  const v2 = mounts.find((l) => l.split(' ')[2] === 'cgroup2')?.split(' ')[1] ?? null;
  const v1 =
    mounts
      .find((l) => l.split(' ')[2] === 'cgroup' && /\bpids\b/.test(l.split(' ')[3] ?? ''))
      ?.split(' ')[1] ?? null;
  return { v1, v2 };
}

interface Case {
  key: string;
  env: Record<string, string>;
  asUser2?: boolean;
  /** cgroup dirs relative to the v1 (pids) and v2 roots. */
  v1?: string;
  v2?: string;
  expect: Partial<GpuProcess>;
  needs?: 'v1' | 'v2';
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim());
}

describe.skipIf(!isRoot)('attribution facts on real processes (root: second user, cgroups)', () => {
  const layout = cgroupLayout();
  const children: ChildProcess[] = [];
  const created: string[] = [];
  const pids = new Map<string, number>();
  const spawnedAt = new Map<string, number>();
  let uid2 = -1;
  let sample: Sample;
  const notPossible: string[] = [];

  const cases = (): Case[] => [
    {
      key: 'env-project',
      env: { GPUPULSE_PROJECT: 'sh-medimg', MY_LAB: 'medimg-lab', SECRET_TOKEN: 'never-sent' },
      expect: {
        env: { GPUPULSE_PROJECT: 'sh-medimg', MY_LAB: 'medimg-lab' },
        slurmJobId: null,
        containerId: null,
      },
    },
    {
      key: 'slurm-v1',
      env: { SLURM_JOB_ID: '4242', SLURM_JOB_ACCOUNT: 'fu_video', SLURM_JOB_USER: USER2 },
      asUser2: true,
      v1: `slurm/uid_${uid2}/job_4242/step_0`,
      needs: 'v1',
      expect: { slurmJobId: '4242', slurmAccount: 'fu_video', slurmUser: USER2, user: USER2, uid: uid2 },
    },
    {
      key: 'slurm-v2',
      env: { SLURM_JOB_ACCOUNT: 'ni_agent' },
      asUser2: true,
      v2: 'system.slice/slurmstepd.scope/job_4343/step_0/user/task_0',
      needs: 'v2',
      expect: { slurmJobId: '4343', slurmAccount: 'ni_agent', user: USER2 },
    },
    {
      key: 'slurm-sluid',
      env: { SLURM_JOB_ID: '5555' },
      v2: `system.slice/slurmstepd.scope/job_${SLUID}/step_0/user/task_0`,
      needs: 'v2',
      expect: { slurmJobId: '5555' },
    },
    {
      key: 'k8s-systemd-v2',
      env: { POD_NAMESPACE: 'ce-3dgen' },
      v2: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID.replace(/-/g, '_')}.slice/cri-containerd-${CTR('a')}.scope`,
      needs: 'v2',
      expect: {
        k8sPodUid: POD_UID,
        k8sQosClass: 'burstable',
        k8sNamespace: 'ce-3dgen',
        containerId: CTR('a'),
      },
    },
    {
      key: 'k8s-cgroupfs-v1',
      env: {},
      v1: `kubepods/besteffort/pod${POD_UID2}/${CTR('b')}`,
      needs: 'v1',
      expect: { k8sPodUid: POD_UID2, k8sQosClass: 'besteffort', containerId: CTR('b') },
    },
    {
      key: 'docker-v2',
      env: { PROJECT: 'ni-agent' },
      v2: `system.slice/docker-${CTR('c')}.scope`,
      needs: 'v2',
      expect: { containerId: CTR('c'), env: { PROJECT: 'ni-agent' }, k8sPodUid: null },
    },
    {
      key: 'docker-v1',
      env: {},
      v1: `docker/${CTR('d')}`,
      needs: 'v1',
      expect: { containerId: CTR('d') },
    },
  ];

  beforeAll(async () => {
    // a second Unix user, idempotently
    try {
      execFileSync('id', ['-u', USER2], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER2]);
    }
    uid2 = uidOf(USER2);

    const apps: Array<{ pid: number; process_name: string; used_gpu_memory: number }> = [];
    for (const c of cases()) {
      if (c.needs === 'v1' && !layout.v1) {
        notPossible.push(`${c.key}: no cgroup v1 pids hierarchy mounted`);
        continue;
      }
      if (c.needs === 'v2' && !layout.v2) {
        notPossible.push(`${c.key}: no cgroup v2 hierarchy mounted`);
        continue;
      }
      const child = spawn('sleep', ['600'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...c.env },
        stdio: 'ignore',
        ...(c.asUser2 ? { uid: uid2, gid: uid2 } : {}),
      });
      children.push(child);
      spawnedAt.set(c.key, Date.now());
      const pid = child.pid as number;
      pids.set(c.key, pid);
      for (const [root, rel] of [
        [layout.v1, c.v1],
        [layout.v2, c.v2],
      ] as const) {
        if (!root || !rel) continue;
        const dir = join(root, rel);
        try {
          mkdirSync(dir, { recursive: true });
          let p = dir;
          while (p !== root && !created.includes(p)) {
            created.push(p);
            p = join(p, '..');
          }
          writeFileSync(join(dir, 'cgroup.procs'), String(pid));
        } catch (err) {
          notPossible.push(`${c.key}: cannot create or join ${dir} (${(err as Error).message})`);
        }
      }
      apps.push({ pid, process_name: `sleep-${c.key}`, used_gpu_memory: 1000 + apps.length });
    }
    // a pid that has gone by the time the agent looks: reported, facts unknown (null), not guessed
    apps.push({ pid: 4_000_000, process_name: 'gone', used_gpu_memory: 1 });

    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [
          agentBin,
          '--once',
          '--nvidia-smi',
          fakeNvidiaSmi,
          '--kmsg',
          'off',
          '--project-env',
          'GPUPULSE_PROJECT,PROJECT,MY_LAB',
        ],
        { env: { ...process.env, FAKE_NVIDIA_SMI_APPS: JSON.stringify(apps) }, timeout: 30_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    sample = SampleSchema.parse(JSON.parse(out));
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sleep(300);
    // deepest first; a cgroup can be removed once its processes are gone
    for (const dir of [...created].sort((a, b) => b.length - a.length)) {
      for (let i = 0; i < 20 && existsSync(dir); i++) {
        try {
          rmdirSync(dir);
        } catch {
          await sleep(100);
        }
      }
    }
    if (notPossible.length > 0)
      console.warn(`attribution cases not possible here:\n${notPossible.join('\n')}`);
  });

  const proc = (key: string) => {
    const pid = pids.get(key);
    return sample.processes?.find((p) => p.pid === pid);
  };

  it('the agent reports every real process with pid, memory, name, cmdline, start time, uid → user', () => {
    expect(sample.processesMode).toBe('full');
    for (const [key, pid] of pids) {
      const p = proc(key);
      expect(p, key).toBeDefined();
      expect(p?.pid).toBe(pid);
      expect(p?.name).toBe(`sleep-${key}`);
      expect(p?.cmdline).toBe('sleep 600');
      expect(Math.abs((p?.startedAt ?? 0) - (spawnedAt.get(key) ?? 0))).toBeLessThan(2_500);
      expect(p?.usedMemoryMiB).toBeGreaterThanOrEqual(1000);
    }
    expect(proc('env-project')).toMatchObject({ uid: 0, user: 'root' });
  });

  it.each([
    'env-project',
    'slurm-v1',
    'slurm-v2',
    'slurm-sluid',
    'k8s-systemd-v2',
    'k8s-cgroupfs-v1',
    'docker-v2',
    'docker-v1',
  ])('%s: the facts from cgroup and environ', (key) => {
    const c = cases().find((x) => x.key === key) as Case;
    if (!pids.has(key)) return; // listed in notPossible
    expect(proc(key)).toMatchObject(c.expect);
    // never sent: variables that were not chosen
    expect(JSON.stringify(proc(key))).not.toContain('never-sent');
  });

  it('a pid that is gone: reported with what nvidia-smi says, every /proc fact null', () => {
    const gone = sample.processes?.find((p) => p.pid === 4_000_000);
    expect(gone).toMatchObject({
      name: 'gone',
      cmdline: null,
      uid: null,
      user: null,
      startedAt: null,
      slurmJobId: null,
    });
    expect(gone?.env).toBeUndefined();
  });

  it('as an unprivileged user the agent reads what it may and reports the rest as unknown', async () => {
    const apps = [
      { pid: pids.get('env-project'), process_name: 'root-proc', used_gpu_memory: 1 },
      { pid: pids.get('slurm-v2') ?? pids.get('slurm-v1'), process_name: 'own-proc', used_gpu_memory: 1 },
    ];
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [agentBin, '--once', '--nvidia-smi', fakeNvidiaSmi, '--kmsg', 'off'],
        {
          env: { PATH: process.env.PATH, HOME: '/tmp', FAKE_NVIDIA_SMI_APPS: JSON.stringify(apps) },
          uid: uid2,
          gid: uid2,
          timeout: 30_000,
        },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    const s = SampleSchema.parse(JSON.parse(out));
    const rootProc = s.processes?.find((p) => p.name === 'root-proc');
    // cmdline, status and cgroup are world-readable; environ of another user is not
    expect(rootProc).toMatchObject({ cmdline: 'sleep 600', uid: 0, user: 'root' });
    expect(rootProc?.env).toBeUndefined();
    const own = s.processes?.find((p) => p.name === 'own-proc');
    expect(own?.user).toBe(USER2);
    expect(own?.slurmAccount).not.toBeNull(); // its own environ is readable
  });
});
