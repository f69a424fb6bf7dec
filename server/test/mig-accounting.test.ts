import type { GpuProcess, MigDevice } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  gpuInstanceSlices,
  migWeights,
  processesByGpu,
  profileSlices,
  totalSlices,
} from '../src/accounting/mig.ts';
import {
  agreedGpuHours,
  parsePeriod,
  periodAt,
  previousPeriod,
  shareStatus,
} from '../src/accounting/share.ts';
import { memoryShares } from '../src/fleet/attribution.ts';
import { parseProjectsFile } from '../src/projects/projects-file.ts';

/** The five MIG devices of the shared H200 capture (agent testdata, `-L` + the MIG table, load state). */
const H200_DEVICES: MigDevice[] = [
  {
    index: 0,
    uuid: 'MIG-0',
    profile: '1c.3g.71gb',
    gpuInstanceId: 2,
    computeInstanceId: 0,
    memoryTotalMiB: 71424,
    memoryUsedMiB: 16925,
  },
  {
    index: 1,
    uuid: 'MIG-1',
    profile: '2c.3g.71gb',
    gpuInstanceId: 2,
    computeInstanceId: 1,
    memoryTotalMiB: 71424,
    memoryUsedMiB: 16925,
  },
  {
    index: 2,
    uuid: 'MIG-2',
    profile: '2g.35gb',
    gpuInstanceId: 3,
    computeInstanceId: 0,
    memoryTotalMiB: 33280,
    memoryUsedMiB: 17,
  },
  {
    index: 3,
    uuid: 'MIG-3',
    profile: '1g.18gb',
    gpuInstanceId: 9,
    computeInstanceId: 0,
    memoryTotalMiB: 16384,
    memoryUsedMiB: 9,
  },
  {
    index: 4,
    uuid: 'MIG-4',
    profile: '1g.18gb',
    gpuInstanceId: 10,
    computeInstanceId: 0,
    memoryTotalMiB: 16384,
    memoryUsedMiB: 9,
  },
];
const gpu = { uuid: 'GPU-P', name: 'NVIDIA H200', migModeCurrent: true, migDevices: H200_DEVICES };
const proc = (gpuUuid: string, pid: number, mem: number | null, extra: object = {}): GpuProcess =>
  ({ gpuUuid, pid, usedMemoryMiB: mem, name: `p${pid}`, ...extra }) as GpuProcess;
const weights = (procs: GpuProcess[], g = gpu) => migWeights(g, procs, memoryShares(procs));

describe('MIG slices', () => {
  it('profiles: compute-instance `Nc.` first, else the GPU instance `Ng`', () => {
    expect(profileSlices('3g.40gb')).toBe(3);
    expect(profileSlices('1g.10gb+me')).toBe(1);
    expect(profileSlices('7g.80gb')).toBe(7);
    expect(profileSlices('1c.3g.71gb')).toBe(1);
    expect(profileSlices('2c.3g.71gb')).toBe(2);
    expect(gpuInstanceSlices('2c.3g.71gb')).toBe(3);
    expect(profileSlices('full')).toBeNull();
    expect(profileSlices(null)).toBeNull();
  });
  it('total slices by model: 7 on A100/H100/H200, 4 on A30, 7 when unknown', () => {
    expect(totalSlices('NVIDIA A100-SXM4-40GB')).toBe(7);
    expect(totalSlices('NVIDIA H100 80GB HBM3')).toBe(7);
    expect(totalSlices('NVIDIA H200')).toBe(7);
    expect(totalSlices('NVIDIA A30')).toBe(4);
    expect(totalSlices('Some Future GPU')).toBe(7);
    expect(totalSlices('NVIDIA H200', H200_DEVICES)).toBe(7);
  });
});

describe('MIG weights on the H200 capture', () => {
  it('a process on a MIG uuid counts its instance: 3g.40gb-like 2g → 2/7', () => {
    expect(weights([proc('MIG-2', 1, 100)])).toEqual([2 / 7]);
  });
  it('two processes on one instance split it by memory', () => {
    const w = weights([proc('MIG-2', 1, 300), proc('MIG-2', 2, 100)]);
    expect(w[0]).toBeCloseTo((2 / 7) * 0.75, 12);
    expect(w[1]).toBeCloseTo((2 / 7) * 0.25, 12);
  });
  it('GI/CI ids place a process on its compute instance (1c of GI 2 → 1/7)', () => {
    expect(weights([proc('GPU-P', 1, 5, { gpuInstanceId: 2, computeInstanceId: 0 })])).toEqual([1 / 7]);
  });
  it('on the parent uuid (what --query-compute-apps says in MIG mode): the GPU instances holding memory (GI 2 = 3g → 3/7)', () => {
    // The capture's 3 processes (memhog 2194, memhog 1170, gpu_burn 13526 MiB) all on the parent uuid.
    const w = weights([proc('GPU-P', 12249, 2194), proc('GPU-P', 12250, 1170), proc('GPU-P', 12267, 13526)]);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(3 / 7, 12);
    expect(w[2]).toBeCloseTo((3 / 7) * (13526 / 16890), 12);
  });
  it('placed and unplaced together: the pool leaves out claimed instances', () => {
    const w = weights([proc('MIG-2', 1, 10), proc('GPU-P', 2, 10), proc('MIG-1', 3, 10)]);
    // MIG-2: 2/7; MIG-1 (2c of GI 2): 2/7; unplaced: GI 2 is claimed through MIG-1 → no held GI left
    // → the slices nobody claimed: 7 − 4 = 3 → 3/7.
    expect(w).toEqual([2 / 7, 3 / 7, 2 / 7]);
  });
  it('not in MIG mode, or devices unknown: the memory shares (a whole GPU)', () => {
    expect(weights([proc('G', 1, 30), proc('G', 2, 10)], { ...gpu, migModeCurrent: false })).toEqual([
      0.75, 0.25,
    ]);
    expect(weights([proc('G', 1, 30)], { ...gpu, migDevices: [] })).toEqual([1]);
  });
  it('processes on MIG uuids are grouped under their physical GPU', () => {
    const m = processesByGpu([gpu], [proc('MIG-3', 1, 1), proc('GPU-P', 2, 1), proc('MIG-X', 3, 1)]);
    expect([...m.keys()].sort()).toEqual(['GPU-P', 'MIG-X']);
    expect(m.get('GPU-P')!.map((p) => p.pid)).toEqual([1, 2]);
  });
});

describe('periods and shares', () => {
  it('months and ISO weeks, parsed and labelled', () => {
    expect(parsePeriod('2026-11')).toMatchObject({
      kind: 'month',
      start: new Date(2026, 10, 1).getTime(),
      end: new Date(2026, 11, 1).getTime(),
    });
    expect(parsePeriod('2026-W48')).toMatchObject({ kind: 'week', start: new Date(2026, 10, 23).getTime() });
    expect(parsePeriod('2026-W01')?.start).toBe(new Date(2025, 11, 29).getTime());
    expect(parsePeriod('2027-W53')).toBeNull(); // 2027 has 52 ISO weeks (2026, starting on a Thursday, has 53)
    expect(parsePeriod('2020-W53')?.label).toBe('2020-W53');
    for (const bad of ['2026-13', '2026-00', '26-11', '2026-W00', '2026-11-01', ''])
      expect(parsePeriod(bad), bad).toBeNull();
    expect(periodAt(new Date(2027, 0, 1, 12).getTime(), 'week').label).toBe('2026-W53');
    expect(previousPeriod(parsePeriod('2026-01')!).label).toBe('2025-12');
  });
  it('agreed GPU-hours: monthly, scaled to a week, a percentage of the centre', () => {
    const nov = parsePeriod('2026-11')!;
    expect(agreedGpuHours({ gpuHoursPerMonth: 720 }, nov, 8)).toBe(720);
    expect(agreedGpuHours({ gpuHoursPerMonth: 720 }, parsePeriod('2026-W47')!, 8)).toBeCloseTo(168, 9);
    expect(agreedGpuHours({ percent: 25 }, nov, 8)).toBe(0.25 * 8 * 720);
    expect(agreedGpuHours(null, nov, 8)).toBeNull();
  });
  it('status: used = busy + idle-held; over share, over pace, left', () => {
    const nov = parsePeriod('2026-11')!;
    const mid = nov.start + (nov.end - nov.start) / 2;
    const s = shareStatus({
      share: { gpuHoursPerMonth: 100 },
      period: nov,
      busyGpuHours: 40,
      idleHeldGpuHours: 15,
      centreGpus: 8,
      now: mid,
    });
    expect(s).toMatchObject({
      usedGpuHours: 55,
      leftGpuHours: 45,
      usedPercent: 55,
      paceGpuHours: 50,
      overShare: false,
      overPace: true,
    });
    const none = shareStatus({
      share: undefined,
      period: nov,
      busyGpuHours: 1,
      idleHeldGpuHours: 0,
      centreGpus: 8,
      now: mid,
    });
    expect(none).toMatchObject({ agreedGpuHours: null, overShare: false, usedPercent: null });
  });
  it('the projects file takes shares, recipients and carbon factors, with clear errors', () => {
    const c = parseProjectsFile(`
institutions:
  - { id: univ, share: { percent: 40 }, reportTo: [a@univ.ac.kr], reportLanguage: en }
projects:
  - { id: p1, institution: univ, share: { gpuHoursPerMonth: 1000 } }
carbon: { gridGramsPerKWh: 450, pue: 1.3 }
`);
    expect(c.accounting.projectShares.get('p1')).toEqual({ gpuHoursPerMonth: 1000 });
    expect(c.accounting.institutionShares.get('univ')).toEqual({ percent: 40 });
    expect(c.accounting.reportTo.get('univ')).toEqual({ to: ['a@univ.ac.kr'], language: 'en' });
    expect(c.accounting.carbon).toEqual({ gridGramsPerKWh: 450, pue: 1.3 });
    expect(parseProjectsFile('projects: []').accounting.carbon).toEqual({ gridGramsPerKWh: 417.3, pue: 1 });
    expect(() => parseProjectsFile('carbon: { pue: 0.5 }', 'p.yaml')).toThrow(
      /p\.yaml:1: carbon\.pue: must be ≥ 1/,
    );
    expect(() => parseProjectsFile('institutions:\n  - { id: u, reportTo: [nope] }', 'p.yaml')).toThrow(
      /reportTo\[0\].*e-mail address/,
    );
    expect(() => parseProjectsFile('projects:\n  - { id: p, share: { percent: 140 } }', 'p.yaml')).toThrow(
      /p\.yaml:2: projects\[0\]\.share/,
    );
  });
});
