import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { FleetState } from '../src/fleet/fleet-state.ts';
import { nextTickDelay } from '../src/socket/dashboard-namespace.ts';
import { gpu, sample } from './helpers.ts';

describe('FleetState', () => {
  it('derives stale from the agent interval and offline from silence or disconnect', () => {
    const clock = new ManualClock(1_000_000);
    const fleet = new FleetState({ clock, offlineAfterMs: 30_000 });
    fleet.connect('n1', 'c1', 5000);
    fleet.ingest('n1', [sample(1, clock.now())]);
    expect(fleet.takeChanges().nodes.map((n) => n.status)).toEqual(['online']);
    clock.advance(14_000);
    fleet.sweep();
    expect(fleet.takeChanges().nodes).toEqual([]);
    clock.advance(2000);
    fleet.sweep();
    expect(fleet.takeChanges().nodes.map((n) => n.status)).toEqual(['stale']);
    clock.advance(15_000);
    fleet.sweep();
    expect(fleet.view('n1')).toMatchObject({ status: 'offline', connected: true });
  });

  it('counts the online nodes that reported the current period (the delta ticker waits for them)', () => {
    const clock = new ManualClock(1_000_000);
    const fleet = new FleetState({ clock });
    for (const n of ['a', 'b', 'c']) fleet.connect(n, n, 1000);
    fleet.connect('slow', 'slow', 5000);
    fleet.ingest('a', [sample(1, 1_000_000)]);
    fleet.ingest('b', [sample(1, 999_000)]);
    fleet.ingest('c', [sample(1, 1_000_000)]);
    fleet.ingest('slow', [sample(1, 1_000_000)]);
    fleet.sweep();
    expect(fleet.periodProgress(1_000_000, 1000)).toEqual({ expected: 3, reported: 2 });
  });

  it('ignores the disconnect of a replaced connection; forgets long-gone nodes', () => {
    const clock = new ManualClock(1_000_000);
    const fleet = new FleetState({ clock, forgetAfterMs: 60_000 });
    fleet.connect('n1', 'old');
    fleet.connect('n1', 'new');
    fleet.disconnect('n1', 'old');
    expect(fleet.view('n1')?.connected).toBe(true);
    fleet.disconnect('n1', 'new');
    expect(fleet.view('n1')).toMatchObject({ connected: false, status: 'offline' });
    fleet.takeChanges();
    clock.advance(61_000);
    fleet.sweep();
    expect(fleet.takeChanges()).toEqual({ nodes: [], removed: ['n1'] });
    expect(fleet.snapshot()).toEqual([]);
  });

  it('keeps the newest sample for live state', () => {
    const clock = new ManualClock();
    const fleet = new FleetState({ clock });
    fleet.connect('n1', 'c');
    expect(fleet.ingest('n1', [sample(2, 2000), sample(1, 1000)]).updated).toBe(true);
    expect(fleet.ingest('n1', [sample(0, 500)]).updated).toBe(false);
    expect(fleet.view('n1')?.lastSampleTs).toBe(2000);
    expect(fleet.counts()).toMatchObject({ nodes: 1, gpus: 2, connected: 1 });
  });
});

describe('FleetState: live state never goes backwards or freezes', () => {
  const T0 = 1_760_000_000_000;

  it('refreshes lastSeen on every accepted report, replays included; replays never overwrite newer values', () => {
    const clock = new ManualClock(T0);
    const fleet = new FleetState({ clock, offlineAfterMs: 30_000 });
    fleet.connect('n1', 'c', 1000);
    fleet.ingest('n1', [sample(10, T0, { gpus: [gpu(0, { utilizationGpuPercent: 40 })] })]);
    clock.advance(20_000);
    // only old samples (spool replay) for 20 s: the node is alive, its live values unchanged
    const r = fleet.ingest(
      'n1',
      [sample(3, T0 - 60_000, { gpus: [gpu(0, { utilizationGpuPercent: 99 })] })],
      {
        replay: true,
      },
    );
    expect(r.updated).toBe(false);
    expect(r.samples).toHaveLength(1);
    clock.advance(15_000);
    fleet.sweep();
    const v = fleet.view('n1')!;
    expect(v.status).not.toBe('offline');
    expect(v.lastSampleTs).toBe(T0);
    expect(v.gpus[0]?.utilizationGpuPercent).toBe(40);
  });

  it('a sample dated ahead of its successors does not freeze the node', () => {
    const clock = new ManualClock(T0);
    const fleet = new FleetState({ clock, outlierAheadMs: 60_000 });
    fleet.connect('n1', 'c', 1000);
    fleet.ingest('n1', [sample(1, T0)]);
    // one sample 4 min ahead (inside the server's 5 min window), then the real clock again
    fleet.ingest('n1', [sample(2, T0 + 240_000, { gpus: [gpu(0, { utilizationGpuPercent: 1 })] })]);
    clock.advance(1000);
    const r = fleet.ingest('n1', [sample(3, T0 + 1000, { gpus: [gpu(0, { utilizationGpuPercent: 77 })] })]);
    expect(r.updated).toBe(true);
    expect(fleet.view('n1')).toMatchObject({ lastSampleTs: T0 + 1000, status: 'online' });
    expect(fleet.view('n1')?.gpus[0]?.utilizationGpuPercent).toBe(77);
    clock.advance(1000);
    fleet.ingest('n1', [sample(4, T0 + 2000)]);
    expect(fleet.view('n1')?.lastSampleTs).toBe(T0 + 2000);
    // a replay of the outlier's neighbourhood changes nothing live
    expect(fleet.ingest('n1', [sample(0, T0 - 1000)], { replay: true }).updated).toBe(false);
  });

  it('an agent whose clock is consistently ahead keeps normal ts ordering', () => {
    const clock = new ManualClock(T0);
    const fleet = new FleetState({ clock });
    fleet.connect('n1', 'c', 1000);
    const ahead = 200_000;
    fleet.ingest('n1', [sample(1, T0 + ahead)]);
    clock.advance(1000);
    fleet.ingest('n1', [sample(2, T0 + ahead + 1000)]);
    // a late, older live sample does not go backwards
    expect(fleet.ingest('n1', [sample(0, T0 + ahead - 5000)]).updated).toBe(false);
    expect(fleet.view('n1')?.lastSampleTs).toBe(T0 + ahead + 1000);
  });

  it('a report delayed in transit (older ts, arriving late) does not send the live view backwards', () => {
    const clock = new ManualClock(T0);
    const fleet = new FleetState({ clock, outlierAheadMs: 60_000 });
    fleet.connect('n1', 'c', 1000);
    fleet.ingest('n1', [sample(2, T0)]);
    clock.advance(120_000);
    expect(fleet.ingest('n1', [sample(1, T0 - 1000)]).updated).toBe(false);
    expect(fleet.view('n1')?.lastSampleTs).toBe(T0);
  });

  it('sorts only out-of-order input, and hands every sample to rollups with its process list (once)', () => {
    const clock = new ManualClock(T0);
    const seen: number[][] = [];
    const fleet = new FleetState({ clock, onSamples: (_n, xs) => seen.push(xs.map((x) => x.sample.seq)) });
    fleet.connect('n1', 'c');
    const uuid = gpu(0).uuid;
    const full = sample(1, T0, {
      processesMode: 'full',
      processes: [{ gpuUuid: uuid, pid: 1, usedMemoryMiB: 1, name: 'a' }],
    });
    const delta = sample(2, T0 + 1000, {
      processesMode: 'delta',
      processes: [{ gpuUuid: uuid, pid: 2, usedMemoryMiB: 1, name: 'b' }],
    });
    const r = fleet.ingest('n1', [delta, full]);
    expect(seen).toEqual([[1, 2]]);
    expect(r.samples.map((x) => x.processes.map((p) => p.pid))).toEqual([[1], [1, 2]]);
    expect(fleet.processesOf('n1').map((p) => p.pid)).toEqual([1, 2]);
    // record: false (refused under backpressure): live state only, no rollups
    fleet.ingest('n1', [sample(3, T0 + 2000)], { record: false });
    expect(seen).toHaveLength(1);
    expect(fleet.view('n1')?.lastSampleTs).toBe(T0 + 2000);
  });
});

describe('delta ticker phase', () => {
  it('schedules the next tick at k × period + phase of the wall clock', () => {
    expect(nextTickDelay(10_000, 1000, 150)).toBe(150);
    expect(nextTickDelay(10_100, 1000, 150)).toBe(50);
    expect(nextTickDelay(10_150, 1000, 150)).toBe(1000);
    expect(nextTickDelay(10_999, 1000, 150)).toBe(151);
  });
});
