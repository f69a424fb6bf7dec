import type { GpuProcess } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { memoryShares, splitGpu, topProject } from '../src/fleet/attribution.ts';
import { FleetState } from '../src/fleet/fleet-state.ts';
import { createProjectAttribution } from '../src/projects/attributor.ts';
import { parseProjectsFile } from '../src/projects/projects-file.ts';
import { parseGroupDb } from '../src/projects/unix-groups.ts';
import { LiveUsage } from '../src/usage/live-usage.ts';
import { gpu, sample } from './helpers.ts';

const config = parseProjectsFile(`
institutions: [{ id: univ }, { id: telco }]
projects:
  - id: p-env
    institution: univ
    quota: 8
    match: { env: [envval] }
  - id: p-slurm
    institution: telco
    match: { slurmAccounts: [acct] }
  - id: p-k8s
    match: { k8sNamespaces: [ns] }
  - id: p-user
    match: { users: [alice] }
  - id: p-group
    match: { groups: [lab] }
  - id: p-gpu
    match: { nodes: [node-a/1] }
  - id: p-node
    match: { nodes: [node-a] }
`);
const groups = parseGroupDb(
  'lab:x:500:alice,bob\nother:x:501:carol\n',
  'carol:x:1000:500::/home/carol:/bin/sh\n',
);
const attribution = createProjectAttribution(() => ({ config, groups }));

const proc = (over: Partial<GpuProcess> = {}): GpuProcess => ({
  gpuUuid: gpu(0).uuid,
  pid: 100,
  usedMemoryMiB: 1000,
  name: 'python',
  ...over,
});

describe('attribution precedence: env > Slurm account > k8s namespace > user > group > GPU > node', () => {
  const all: Partial<GpuProcess> = {
    env: { GPUPULSE_PROJECT: 'envval' },
    slurmAccount: 'acct',
    k8sNamespace: 'ns',
    user: 'alice',
  };
  const cases: Array<[string, Partial<GpuProcess>, number, string, string]> = [
    ['env wins over everything', all, 1, 'p-env', 'env'],
    [
      'env var PROJECT naming a project id',
      { env: { PROJECT: 'p-k8s' }, slurmAccount: 'acct' },
      0,
      'p-k8s',
      'env',
    ],
    [
      'env value naming no project falls through',
      { ...all, env: { GPUPULSE_PROJECT: 'nope' } },
      1,
      'p-slurm',
      'slurmAccount',
    ],
    [
      'Slurm account from the environment',
      { env: { SLURM_JOB_ACCOUNT: 'acct' }, user: 'alice' },
      1,
      'p-slurm',
      'slurmAccount',
    ],
    ['k8s namespace over user', { k8sNamespace: 'ns', user: 'alice' }, 1, 'p-k8s', 'k8sNamespace'],
    ['user over group', { user: 'alice' }, 1, 'p-user', 'user'],
    ['Slurm user counts as user', { slurmUser: 'alice' }, 1, 'p-user', 'user'],
    ['supplementary group', { user: 'bob' }, 1, 'p-group', 'group'],
    ['primary group from passwd', { user: 'carol' }, 1, 'p-group', 'group'],
    ['GPU reservation over node reservation', { user: 'dave' }, 1, 'p-gpu', 'gpu'],
    ['node reservation', { user: 'dave' }, 0, 'p-node', 'node'],
  ];
  it.each(cases)('%s', (_name, facts, index, project, rule) => {
    expect(attribution.projectOf('node-a', { uuid: 'u', index }, proc(facts))).toEqual({ project, rule });
  });
  it('nothing matches → unassigned', () => {
    expect(attribution.projectOf('node-b', { uuid: 'u', index: 0 }, proc({ user: 'dave' }))).toEqual({
      project: 'unassigned',
      rule: 'none',
    });
  });
});

describe('splitting a shared GPU by memory share', () => {
  it('shares follow memory and sum to 1; unknown memory splits equally', () => {
    expect(memoryShares([proc({ usedMemoryMiB: 3000 }), proc({ usedMemoryMiB: 1000 })])).toEqual([
      0.75, 0.25,
    ]);
    expect(memoryShares([proc({ usedMemoryMiB: 3000 }), proc({ usedMemoryMiB: null })])).toEqual([0.5, 0.5]);
    expect(
      memoryShares([proc({ usedMemoryMiB: 0 }), proc({ usedMemoryMiB: 0 }), proc({ usedMemoryMiB: 0 })]),
    ).toEqual([1 / 3, 1 / 3, 1 / 3]);
    const shares = splitGpu(attribution, 'node-x', { uuid: 'u', index: 0 }, [
      proc({ pid: 1, user: 'alice', usedMemoryMiB: 1000 }),
      proc({ pid: 2, slurmAccount: 'acct', slurmJobId: '42', usedMemoryMiB: 3000 }),
    ]);
    expect(shares.map((s) => [s.project, s.share, s.job])).toEqual([
      ['p-user', 0.25, null],
      ['p-slurm', 0.75, '42'],
    ]);
    expect(topProject(shares)).toBe('p-slurm');
  });
});

describe('live usage from fleet state (fake clock)', () => {
  it('project sums equal cluster totals; idle-held after the window; GPU-hours and energy integrate', () => {
    const clock = new ManualClock(new Date(2026, 0, 15, 10, 0, 0).getTime());
    const fleet = new FleetState({ clock, attribution, idleThresholdPercent: 5, idleWindowMs: 10 * 60_000 });
    const points: number[] = [];
    const usage = new LiveUsage({ fleet, projects: () => config, clock, sink: (p) => points.push(p.length) });
    fleet.connect('node-x', 'c1', 1000);
    fleet.connect('node-y', 'c2', 1000);
    const procs: GpuProcess[] = [
      proc({ pid: 1, gpuUuid: gpu(0).uuid, user: 'alice', usedMemoryMiB: 1000 }),
      proc({ pid: 2, gpuUuid: gpu(0).uuid, slurmAccount: 'acct', slurmJobId: '7', usedMemoryMiB: 3000 }),
      proc({ pid: 3, gpuUuid: gpu(1).uuid, user: 'nobody-known', usedMemoryMiB: null }),
    ];
    const feed = (seq: number) => {
      fleet.ingest('node-x', [
        sample(seq, clock.now(), {
          gpus: [
            gpu(0, { utilizationGpuPercent: 80, powerDrawWatts: 400 }),
            gpu(1, { utilizationGpuPercent: 2, powerDrawWatts: 100 }),
          ],
          processes: procs,
        }),
      ]);
      fleet.ingest('node-y', [
        sample(seq, clock.now(), { gpus: [gpu(0, { uuid: 'GPU-y0', utilizationGpuPercent: 0 })] }),
      ]);
    };
    feed(1);
    let u = usage.update();
    const by = (id: string) => u.projects.find((p) => p.project === id)!;
    expect(u.cluster).toMatchObject({
      gpusTotal: 3,
      gpusInUse: 2,
      gpusFree: 1,
      gpusIdleHeld: 0,
      gpusOffline: 0,
      activeProjects: 2,
    });
    const sum = u.projects.reduce((a, p) => a + p.gpusInUse, 0);
    expect(sum).toBeCloseTo(u.cluster.gpusInUse, 6);
    expect(by('p-slurm')).toMatchObject({
      gpusInUse: 0.75,
      meanUtilizationPercent: 80,
      powerDrawWatts: 300,
      jobs: ['7'],
      quotaGpus: null,
    });
    expect(by('p-user')).toMatchObject({ gpusInUse: 0.25, users: ['alice'], nodes: ['node-x'] });
    expect(by('unassigned')).toMatchObject({ gpusInUse: 1, meanUtilizationPercent: 2 });
    expect(by('p-env')).toMatchObject({ gpusInUse: 0, quotaGpus: 8 });
    const powerSum = u.projects.reduce((a, p) => a + p.powerDrawWatts, 0);
    expect(powerSum).toBeCloseTo(500, 6);

    // GpuView carries project, users, jobs, process count, idle state.
    const view = fleet.view('node-x')!;
    expect(view.gpus[0]).toMatchObject({
      project: 'p-slurm',
      users: ['alice'],
      jobs: ['7'],
      processCount: 2,
      idleHeld: false,
    });
    expect(view.gpus[1]).toMatchObject({ project: 'unassigned', processCount: 1, idleHeld: false });
    expect(view.gpus[1]!.idleHeldSince).toBe(clock.now());

    // 11 minutes at 1 Hz: GPU 1 becomes idle-held after 10 min; GPU-hours accumulate.
    for (let i = 0; i < 660; i++) {
      clock.advance(1000);
      feed(i + 2);
      u = usage.update();
    }
    expect(u.cluster.gpusIdleHeld).toBe(1);
    expect(by('unassigned').gpusIdleHeld).toBe(1);
    expect(fleet.view('node-x')!.gpus[1]!.idleHeld).toBe(true);
    expect(by('p-slurm').gpuHoursToday).toBeCloseTo((0.75 * 660) / 3600, 3);
    expect(by('p-slurm').energyKWhToday).toBeCloseTo((300 * 660) / 3600 / 1000, 4);
    expect(by('unassigned').idleGpuHoursToday).toBeCloseTo(60 / 3600, 3);
    // A usage point set (projects + cluster) every 10 s.
    expect(points.length).toBe(67);
    expect(points[0]).toBe(config.projects.size + 2);

    // The node goes silent: its GPUs are offline, not in use.
    clock.advance(31_000);
    fleet.sweep();
    fleet.disconnect('node-x', 'c1');
    u = usage.update();
    expect(u.cluster).toMatchObject({ gpusOffline: 3, gpusInUse: 0, gpusIdleHeld: 0 });
  });
});
