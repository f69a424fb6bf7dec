import { describe, expect, it } from 'vitest';
import { gpu, node, snapshot } from '../test/fixtures.ts';
import {
  applyDelta,
  applySnapshot,
  computeHeadline,
  gpuActivity,
  type NodeMap,
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
