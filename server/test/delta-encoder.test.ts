import type { GpuView, NodeView } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { DeltaEncoder } from '../src/socket/delta-encoder.ts';
import { gpu } from './helpers.ts';

const gv = (index: number, over: Partial<GpuView> = {}): GpuView => ({
  ...gpu(index),
  project: null,
  ...over,
});
const node = (over: Partial<NodeView> = {}, gpus: GpuView[] = [gv(0), gv(1)]): NodeView => ({
  node: 'n1',
  status: 'online',
  connected: true,
  lastSeen: 1000,
  lastSampleTs: 1000,
  gpuCollector: 'ok',
  gpuError: null,
  host: null,
  gpus,
  ...over,
});

describe('DeltaEncoder', () => {
  it('sends a new node in full, then only the keys that changed', () => {
    const e = new DeltaEncoder();
    expect(e.encode([node()], [])).toEqual({ nodes: [node()], patches: [] });
    const next = node({ lastSeen: 2000, lastSampleTs: 2000 }, [
      gv(0),
      gv(1, { utilizationGpuPercent: 99, users: ['kim'] }),
    ]);
    expect(e.encode([next], [])).toEqual({
      nodes: [],
      patches: [
        {
          node: 'n1',
          lastSeen: 2000,
          lastSampleTs: 2000,
          gpus: [{ index: 1, utilizationGpuPercent: 99, users: ['kim'] }],
        },
      ],
    });
  });

  it('skips a node whose view did not change, and compares arrays by value', () => {
    const e = new DeltaEncoder();
    e.encode([node({}, [gv(0, { clocksEventReasons: ['gpu_idle'] })])], []);
    expect(e.encode([node({}, [gv(0, { clocksEventReasons: ['gpu_idle'] })])], [])).toEqual({
      nodes: [],
      patches: [],
    });
  });

  it('sends in full when the GPU list changes or a key goes away', () => {
    const e = new DeltaEncoder();
    e.encode([node()], []);
    const fewer = node({}, [gv(0)]);
    expect(e.encode([fewer], []).nodes).toEqual([fewer]);
    const withKey = node({}, [gv(0, { idleHeld: true })]);
    e.encode([withKey], []);
    const without = node({}, [gv(0)]);
    expect(e.encode([without], []).nodes).toEqual([without]);
  });

  it('keeps patching when dashboards join (full nodes for them are the namespace job), and forgets removed nodes', () => {
    const e = new DeltaEncoder();
    e.encode([node()], []);
    expect(e.encode([node({ lastSeen: 3000 })], []).patches).toHaveLength(1);
    expect(e.encode([node({ lastSeen: 4000 })], []).patches).toHaveLength(1);
    e.encode([], ['n1']);
    expect(e.encode([node({ lastSeen: 5000 })], []).nodes).toHaveLength(1);
  });
});
