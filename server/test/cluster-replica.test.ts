import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { type FleetMessage, ReplicatedFleet } from '../src/cluster/replicated-fleet.ts';
import { gpu, sample } from './helpers.ts';

/** Two replicas wired to each other directly (what the Redis channel does between processes). */
function pair() {
  const clock = new ManualClock(Date.now());
  const recorded: string[] = [];
  const make = (name: string) =>
    new ReplicatedFleet({
      clock,
      onSamples: (node, samples) =>
        recorded.push(`${name}:${node}:${samples.map((s) => s.sample.seq).join(',')}`),
    });
  const a = make('A');
  const b = make('B');
  const wire = (from: ReplicatedFleet, fromId: string, to: ReplicatedFleet) => {
    from.publish = (m: FleetMessage) => {
      if (m.t === 'hello') for (const f of to.fullState()) from.applyRemote('other', f);
      else to.applyRemote(fromId, m);
    };
  };
  wire(a, 'A', b);
  wire(b, 'B', a);
  return { clock, a, b, recorded };
}

describe('ReplicatedFleet (replica of the other processes’ nodes)', () => {
  it('a node of A is live on B with its samples and process list; B records them too', () => {
    const { clock, a, b, recorded } = pair();
    a.connect('n1', 'sock-1', 1000);
    const procs = [{ gpuUuid: gpu(0).uuid, pid: 42, user: 'alice', name: 'python', usedMemoryMiB: 100 }];
    a.ingest('n1', [sample(1, clock.now(), { processes: procs })]);
    const v = b.view('n1')!;
    expect(v.connected).toBe(true);
    expect(v.status).toBe('online');
    expect(v.lastSampleTs).toBe(clock.now());
    expect(b.processesOf('n1')).toEqual(procs);
    expect(a.localNodes()).toBe(1);
    expect(b.remoteNodes()).toBe(1);
    // Both processes see the samples (the app lets only the lease holder aggregate them).
    expect(recorded).toEqual(['A:n1:1', 'B:n1:1']);
    // A process delta applied on both sides gives the same list.
    a.ingest('n1', [
      sample(2, clock.now() + 1000, {
        processesMode: 'delta',
        processes: [],
        processesGone: [{ gpuUuid: gpu(0).uuid, pid: 42 }],
      }),
    ]);
    expect(b.processesOf('n1')).toEqual([]);
  });

  it('the owner goes silent: its nodes go offline; the agent reconnects to B: B owns it, late messages of A are ignored', () => {
    const { clock, a, b } = pair();
    a.connect('n1', 'sock-1', 1000);
    a.ingest('n1', [sample(1, clock.now())]);
    // What arrived from A in its last seconds (A may have acked it without storing it yet).
    const recent = b.takeRecent('A', Date.now() - 5000);
    expect(recent.map((r) => [r.node, r.samples.map((x) => x.sample.seq)])).toEqual([['n1', [1]]]);
    expect(b.takeRecent('A', Date.now() + 2000)).toEqual([]);
    expect(b.ownerGone('A')).toBe(1);
    expect(b.takeRecent('A', 0)).toEqual([]);
    expect(b.view('n1')!.status).toBe('offline');
    expect(b.view('n1')!.connected).toBe(false);
    // The agent fails over to B.
    clock.advance(2000);
    b.connect('n1', 'sock-2', 1000);
    b.ingest('n1', [sample(3, clock.now())]);
    expect(b.view('n1')!.status).toBe('online');
    expect(b.localNodes()).toBe(1);
    expect(b.remoteNodes()).toBe(0);
    // A (alive again, its socket to the agent half-open) replays an old sample: not adopted on B.
    b.applyRemote('A', {
      t: 's',
      n: 'n1',
      i: 1000,
      s: [sample(2, clock.now() - 1000)],
      replay: false,
      record: true,
    });
    expect(b.view('n1')!.lastSampleTs).toBe(clock.now());
    expect(b.localNodes()).toBe(1);
    // And A follows B's connect: n1 is remote there now.
    expect(a.view('n1')!.connected).toBe(true);
    expect(a.remoteNodes()).toBe(1);
    expect(a.localNodes()).toBe(0);
  });

  it('a joining process gets every owner’s full state (newest sample with its full process list)', () => {
    const clock = new ManualClock(Date.now());
    const a = new ReplicatedFleet({ clock });
    a.connect('n1', 'sock-1', 1000);
    const p1 = { gpuUuid: gpu(0).uuid, pid: 1, user: 'u', name: 'x', usedMemoryMiB: 1 };
    const p2 = { gpuUuid: gpu(1).uuid, pid: 2, user: 'v', name: 'y', usedMemoryMiB: 2 };
    a.ingest('n1', [sample(1, clock.now(), { processes: [p1] })]);
    a.ingest('n1', [sample(2, clock.now() + 1000, { processesMode: 'delta', processes: [p2] })]);
    const late = new ReplicatedFleet({ clock });
    for (const m of a.fullState()) late.applyRemote('A', m);
    expect(late.view('n1')!.lastSampleTs).toBe(clock.now() + 1000);
    expect(late.processesOf('n1')).toEqual([p1, p2]);
    // The next delta applies on top of the full list.
    late.applyRemote('A', {
      t: 's',
      n: 'n1',
      i: 1000,
      s: [
        sample(3, clock.now() + 2000, {
          processesMode: 'delta',
          processesGone: [{ gpuUuid: gpu(0).uuid, pid: 1 }],
        }),
      ],
      replay: false,
      record: true,
    });
    expect(late.processesOf('n1')).toEqual([p2]);
  });
});
