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
