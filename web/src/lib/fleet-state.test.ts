import type { FleetDelta, GpuPatch, NodePatch, NodeView } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { gpu, node, snapshot } from '../test/fixtures.ts';
import {
  applyDelta,
  applySnapshot,
  computeHeadline,
  FleetRecords,
  gpuActivity,
  type NodeMap,
  NodeViews,
  nodeOrder,
  sortedNodes,
  summarizeNode,
} from './fleet-state.ts';

describe('applySnapshot', () => {
  it('replaces everything the map held', () => {
    const map: NodeMap = new Map([['old', node('old')]]);
    applySnapshot(map, snapshot([node('a'), node('b')]));
    expect([...map.keys()]).toEqual(['a', 'b']);
  });
});

describe('applyDelta', () => {
  it('replaces changed nodes in full and keeps the others', () => {
    const map: NodeMap = new Map();
    const b = node('b');
    applySnapshot(map, snapshot([node('a'), b]));
    const a2 = node('a', { status: 'stale', gpus: [gpu(0, { utilizationGpuPercent: 99 })] });
    expect(applyDelta(map, { serverTime: 2000, nodes: [a2], removed: [] })).toBe(true);
    expect(map.get('a')).toBe(a2);
    expect(map.get('a')?.gpus).toHaveLength(1);
    expect(map.get('b')).toBe(b);
  });

  it('adds new nodes and drops removed ones', () => {
    const map: NodeMap = new Map();
    applySnapshot(map, snapshot([node('a'), node('b')]));
    applyDelta(map, { serverTime: 2000, nodes: [node('c')], removed: ['a'] });
    expect([...map.keys()].sort()).toEqual(['b', 'c']);
  });

  it('reports an empty delta (heartbeat) and unknown removals as no change', () => {
    const map: NodeMap = new Map();
    applySnapshot(map, snapshot([node('a')]));
    expect(applyDelta(map, { serverTime: 2000, nodes: [], removed: [] })).toBe(false);
    expect(applyDelta(map, { serverTime: 2000, nodes: [], removed: ['nope'] })).toBe(false);
    expect(map.size).toBe(1);
  });
});

describe('sortedNodes', () => {
  it('sorts names naturally', () => {
    const map: NodeMap = new Map();
    applySnapshot(map, snapshot([node('gpu-10'), node('gpu-2'), node('gpu-1')]));
    expect(sortedNodes(map).map((n) => n.node)).toEqual(['gpu-1', 'gpu-2', 'gpu-10']);
  });
});

describe('gpuActivity', () => {
  it.each([
    ['online', 50, 'ok', 'busy'],
    ['online', 5, 'ok', 'busy'],
    ['online', 4.9, 'ok', 'idle'],
    ['online', 0, 'ok', 'idle'],
    ['online', null, 'ok', 'unknown'],
    ['online', 50, 'error', 'unknown'],
    ['online', 50, 'stale', 'unknown'],
    ['stale', 50, 'ok', 'unknown'],
    ['offline', 50, 'ok', 'offline'],
  ] as const)('%s node, util %s, gpu %s → %s', (status, util, state, expected) => {
    expect(gpuActivity(status, gpu(0, { utilizationGpuPercent: util, state }))).toBe(expected);
  });
});

describe('computeHeadline', () => {
  it('is all zeros and nulls for an empty fleet', () => {
    const h = computeHeadline([]);
    expect(h.gpusTotal).toBe(0);
    expect(h.meanUtilizationPercent).toBeNull();
    expect(h.powerKilowatts).toBeNull();
  });

  it('counts null utilization as unknown, never as 0 %', () => {
    const h = computeHeadline([
      node('a', {
        gpus: [
          gpu(0, { utilizationGpuPercent: 80, powerDrawWatts: 500 }),
          gpu(1, { utilizationGpuPercent: 0, powerDrawWatts: 100 }),
          gpu(2, { utilizationGpuPercent: null, powerDrawWatts: null }),
        ],
      }),
    ]);
    expect(h).toMatchObject({ gpusTotal: 3, gpusBusy: 1, gpusIdle: 1, gpusUnknown: 1, gpusOffline: 0 });
    // Mean over the two known GPUs only: (80 + 0) / 2, not (80 + 0 + 0) / 3.
    expect(h.meanUtilizationPercent).toBe(40);
    expect(h.powerKilowatts).toBeCloseTo(0.6);
  });

  it('counts nodes by status and GPUs of offline nodes as offline', () => {
    const h = computeHeadline([
      node('a'),
      node('b', { status: 'stale' }),
      node('c', { status: 'offline', connected: false }),
      node('d', { status: 'offline', gpus: [] }),
    ]);
    expect(h).toMatchObject({
      nodesTotal: 4,
      nodesOnline: 1,
      nodesStale: 1,
      nodesOffline: 2,
      gpusTotal: 6,
      gpusBusy: 2,
      gpusUnknown: 2,
      gpusOffline: 2,
    });
    // Only the online node's GPUs are current.
    expect(h.meanUtilizationPercent).toBe(50);
    expect(h.powerKilowatts).toBeCloseTo(0.6);
  });

  it('gives a null mean when no GPU has known utilization (MIG everywhere)', () => {
    const h = computeHeadline([node('a', { gpus: [gpu(0, { utilizationGpuPercent: null })] })]);
    expect(h.meanUtilizationPercent).toBeNull();
    expect(h.gpusUnknown).toBe(1);
  });
});

describe('summarizeNode', () => {
  it('averages known utilization and takes the max temperature', () => {
    const s = summarizeNode(
      node('a', {
        gpus: [
          gpu(0, { utilizationGpuPercent: 90, temperatureCelsius: 88 }),
          gpu(1, { utilizationGpuPercent: null, temperatureCelsius: null }),
          gpu(2, { utilizationGpuPercent: 10, temperatureCelsius: 40 }),
        ],
      }),
    );
    expect(s).toEqual({ gpuCount: 3, meanUtilizationPercent: 50, maxTemperatureCelsius: 88 });
  });
});

describe('applyDelta with patches', () => {
  it('patches held nodes into new objects and reports unknown ones', () => {
    const a = node('a', { status: 'online' });
    const map: NodeMap = new Map([['a', a]]);
    const missing: string[] = [];
    const changed = applyDelta(
      map,
      {
        serverTime: 1,
        nodes: [],
        removed: [],
        patches: [
          { node: 'a', status: 'stale' },
          { node: 'zz', status: 'online' },
        ],
      },
      missing,
    );
    expect(changed).toBe(true);
    expect(map.get('a')?.status).toBe('stale');
    expect(map.get('a')).not.toBe(a);
    expect(a.status).toBe('online');
    expect(missing).toEqual(['zz']);
    expect(map.has('zz')).toBe(false);
  });
});

describe('flat store (FleetRecords): patches applied in place', () => {
  /** A deterministic PRNG (mulberry32), so a failure reproduces. */
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function randomPatch(r: () => number, n: NodeView): NodePatch {
    const patch: NodePatch = { node: n.node };
    if (r() < 0.3) patch.status = (['online', 'stale', 'offline'] as const)[Math.floor(r() * 3)]!;
    if (r() < 0.5) patch.lastSeen = Math.floor(r() * 1e6);
    if (r() < 0.2) patch.host = { ...n.host!, cpuPercent: Math.floor(r() * 100) };
    if (r() < 0.8) {
      patch.gpus = [];
      for (const g of n.gpus) {
        if (r() < 0.5) continue;
        const gp: GpuPatch = { index: g.index };
        if (r() < 0.8) gp.utilizationGpuPercent = r() < 0.1 ? null : Math.floor(r() * 101);
        if (r() < 0.5) gp.temperatureCelsius = 30 + Math.floor(r() * 60);
        if (r() < 0.2) gp.project = r() < 0.5 ? null : `p${Math.floor(r() * 5)}`;
        if (r() < 0.1) gp.users = ['kim'];
        patch.gpus.push(gp);
      }
      // A GPU index the node does not have is ignored, as applyNodePatch does.
      if (r() < 0.1) patch.gpus.push({ index: 99, utilizationGpuPercent: 1 });
    }
    return patch;
  }

  it('equals applyNodePatch after every delta of a random sequence (1,000 deltas)', () => {
    const r = rng(42);
    const start = [
      node('a', { gpus: [gpu(0), gpu(1), gpu(2), gpu(3)] }),
      node('b'),
      node('c', { gpus: [gpu(2), gpu(5)] }), // indices that are not positions
    ];
    const expected: NodeMap = new Map();
    applySnapshot(expected, snapshot(start));
    const flat = new FleetRecords();
    flat.applySnapshot(snapshot(start));
    for (let step = 0; step < 1000; step++) {
      const patches = [...expected.values()].filter(() => r() < 0.7).map((n) => randomPatch(r, n));
      const delta: FleetDelta = { serverTime: step, nodes: [], patches, removed: [] };
      applyDelta(expected, delta);
      flat.applyDelta(delta);
      for (const [name, n] of expected) expect(flat.records.get(name)).toEqual(n);
    }
  });

  it('patches records in place: no new node or GPU objects, revisions and version move', () => {
    const flat = new FleetRecords();
    flat.applySnapshot(snapshot([node('a'), node('b')]));
    const a = flat.records.get('a')!;
    const g0 = a.gpus[0]!;
    const v = flat.version;
    const changed = flat.applyDelta({
      serverTime: 2,
      nodes: [],
      patches: [{ node: 'a', gpus: [{ index: 0, utilizationGpuPercent: 77 }] }],
      removed: [],
    });
    expect(changed).toBe(true);
    expect(flat.records.get('a')).toBe(a);
    expect(a.gpus[0]).toBe(g0);
    expect(g0.utilizationGpuPercent).toBe(77);
    expect(flat.version).toBe(v + 1);
    expect(flat.revision('a')).toBe(v + 1);
    expect(flat.revision('b')).toBeLessThan(v + 1);
    expect(flat.changed).toEqual(['a']);
  });

  it('does not share objects with the snapshot it was given', () => {
    const given = node('a');
    const flat = new FleetRecords();
    flat.applySnapshot(snapshot([given]));
    flat.applyDelta({
      serverTime: 2,
      nodes: [],
      patches: [{ node: 'a', status: 'stale', gpus: [{ index: 1, temperatureCelsius: 90 }] }],
      removed: [],
    });
    expect(given.status).toBe('online');
    expect(given.gpus[1]!.temperatureCelsius).toBe(60);
  });

  it('views: immutable copies, the same object until the node changes, a new one after', () => {
    const flat = new FleetRecords();
    flat.applySnapshot(snapshot([node('a'), node('b')]));
    const a1 = flat.view('a')!;
    const b1 = flat.view('b')!;
    expect(flat.view('a')).toBe(a1);
    flat.applyDelta({
      serverTime: 2,
      nodes: [],
      patches: [{ node: 'a', gpus: [{ index: 1, utilizationGpuPercent: 3 }] }],
      removed: [],
    });
    const a2 = flat.view('a')!;
    expect(a2).not.toBe(a1);
    expect(a1.gpus[1]!.utilizationGpuPercent).toBe(50); // the old view kept its values
    expect(a2.gpus[1]!.utilizationGpuPercent).toBe(3);
    expect(flat.view('b')).toBe(b1);
    const views = new NodeViews(flat);
    expect(views.get('a')).toBe(a2);
    expect([...views.values()].map((n) => n.node)).toEqual(['a', 'b']);
  });

  it('membership moves with nodes coming, going or changing their GPU count; missing patches are reported', () => {
    const flat = new FleetRecords();
    flat.applySnapshot(snapshot([node('a')]));
    const m = flat.membership;
    flat.applyDelta({ serverTime: 2, nodes: [], patches: [{ node: 'a', status: 'stale' }], removed: [] });
    expect(flat.membership).toBe(m);
    flat.applyDelta({ serverTime: 3, nodes: [node('b')], removed: [] });
    expect(flat.membership).toBe(m + 1);
    flat.applyDelta({ serverTime: 4, nodes: [node('b', { gpus: [gpu(0)] })], removed: [] });
    expect(flat.membership).toBe(m + 2);
    flat.applyDelta({ serverTime: 5, nodes: [], removed: ['a'] });
    expect(flat.membership).toBe(m + 3);
    expect(flat.view('a')).toBeUndefined();
    const missing: string[] = [];
    const v = flat.version;
    expect(
      flat.applyDelta(
        { serverTime: 6, nodes: [], patches: [{ node: 'zz', status: 'stale' }], removed: [] },
        missing,
      ),
    ).toBe(false);
    expect(missing).toEqual(['zz']);
    expect(flat.version).toBe(v);
  });

  it('nodeOrder sorts naturally and keeps the previous order for the same names', () => {
    const first = nodeOrder(['n-10', 'n-2', 'n-1']);
    expect(first).toEqual(['n-1', 'n-2', 'n-10']);
    expect(nodeOrder(['n-2', 'n-10', 'n-1'], first)).toBe(first);
    expect(nodeOrder(['n-2', 'n-3', 'n-1'], first)).toEqual(['n-1', 'n-2', 'n-3']);
  });
});
