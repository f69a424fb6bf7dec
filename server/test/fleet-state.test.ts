import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { FleetState } from '../src/fleet/fleet-state.ts';
import { nextTickDelay } from '../src/socket/dashboard-namespace.ts';
import { sample } from './helpers.ts';

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

describe('delta ticker phase', () => {
  it('schedules the next tick at k × period + phase of the wall clock', () => {
    expect(nextTickDelay(10_000, 1000, 150)).toBe(150);
    expect(nextTickDelay(10_100, 1000, 150)).toBe(50);
    expect(nextTickDelay(10_150, 1000, 150)).toBe(1000);
    expect(nextTickDelay(10_999, 1000, 150)).toBe(151);
  });
});
