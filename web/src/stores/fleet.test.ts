import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import { gpu, node, snapshot } from '../test/fixtures.ts';
import { useFleetStore } from './fleet.ts';

describe('fleet store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('applies a snapshot, then deltas, keeping derived figures current', () => {
    const fleet = useFleetStore();
    expect(fleet.hasSnapshot).toBe(false);
    fleet.applySnapshot(snapshot([node('b'), node('a')]), 10);
    expect(fleet.hasSnapshot).toBe(true);
    expect(fleet.lastUpdate).toBe(10);
    expect(fleet.storage?.kind).toBe('memory');
    expect(fleet.nodeList.map((n) => n.node)).toEqual(['a', 'b']);
    expect(fleet.headline.gpusBusy).toBe(4);

    const v = fleet.version;
    fleet.applyDelta(
      {
        serverTime: 2000,
        nodes: [node('a', { gpus: [gpu(0, { utilizationGpuPercent: null })] })],
        removed: ['b'],
      },
      20,
    );
    expect(fleet.version).toBe(v + 1);
    expect(fleet.nodeList.map((n) => n.node)).toEqual(['a']);
    expect(fleet.headline).toMatchObject({ gpusTotal: 1, gpusUnknown: 1, gpusBusy: 0 });
    expect(fleet.lastUpdate).toBe(20);
  });

  it('a heartbeat delta refreshes lastUpdate without bumping the version', () => {
    const fleet = useFleetStore();
    fleet.applySnapshot(snapshot([node('a')]), 10);
    const v = fleet.version;
    fleet.applyDelta({ serverTime: 3000, nodes: [], removed: [] }, 30);
    expect(fleet.version).toBe(v);
    expect(fleet.lastUpdate).toBe(30);
    expect(fleet.serverTime).toBe(3000);
  });

  it('tracks connection state', () => {
    const fleet = useFleetStore();
    expect(fleet.connection).toBe('connecting');
    fleet.setConnection('reconnecting');
    expect(fleet.connection).toBe('reconnecting');
  });
});

describe('fleet store views', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('patches in place; nodeList and nodes hand out fresh immutable views after a change', () => {
    const fleet = useFleetStore();
    fleet.applySnapshot(snapshot([node('b'), node('a')]), 10);
    const list1 = fleet.nodeList;
    const a1 = list1[0]!;
    const rec = fleet.records.records.get('a');
    fleet.applyDelta(
      {
        serverTime: 2,
        nodes: [],
        patches: [{ node: 'a', gpus: [{ index: 0, utilizationGpuPercent: 1 }] }],
        removed: [],
      },
      20,
    );
    expect(fleet.records.records.get('a')).toBe(rec); // patched in place
    const list2 = fleet.nodeList;
    expect(list2).not.toBe(list1); // a new list per change: props update
    expect(list2[0]).not.toBe(a1);
    expect(list2[0]!.gpus[0]!.utilizationGpuPercent).toBe(1);
    expect(a1.gpus[0]!.utilizationGpuPercent).toBe(50);
    expect(list2[1]).toBe(list1[1]); // unchanged node: the same view
    expect(fleet.nodes.get('a')).toBe(list2[0]);
    expect(fleet.headline.gpusBusy).toBe(3);
    expect(list2.slice(0, 1).map((n) => n.node)).toEqual(['a']);
    expect([...list2].length).toBe(2);
  });
});
