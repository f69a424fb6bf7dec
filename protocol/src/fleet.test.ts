import { describe, expect, it } from 'vitest';
import { applyNodePatch, encodeNodePatch } from './fleet.ts';
import { type GpuView, NodePatchSchema, type NodeView, NodeViewSchema } from './schemas.ts';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gpu = (index: number): GpuView => ({
  index,
  uuid: `GPU-${index}`,
  name: 'NVIDIA H100 80GB HBM3',
  state: 'ok',
  utilizationGpuPercent: 40,
  utilizationMemoryPercent: 10,
  memoryUsedMiB: 1000,
  memoryTotalMiB: 81559,
  temperatureCelsius: 50,
  powerDrawWatts: 300.5,
  powerLimitWatts: 700,
  fanSpeedPercent: null,
  pstate: 'P0',
  clocksSmMHz: 1980,
  clocksMemoryMHz: 2619,
  driverVersion: '590.48.01',
  project: null,
  users: [],
});

const node = (gpus: number): NodeView => ({
  node: 'node-a',
  status: 'online',
  connected: true,
  lastSeen: 1_700_000_000_000,
  lastSampleTs: 1_700_000_000_000,
  gpuCollector: 'ok',
  gpuError: null,
  host: null,
  gpus: Array.from({ length: gpus }, (_, i) => gpu(i)),
});

/** What a dashboard gets: JSON on the wire. */
const wire = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

/** The next view: GPU metrics move, keys appear, go null, go away; now and then the GPU list changes. */
function mutate(prev: NodeView, r: () => number): NodeView {
  const next: NodeView = { ...prev, gpus: prev.gpus.map((g) => ({ ...g })) };
  if (r() < 0.2) next.lastSeen = (prev.lastSeen ?? 0) + 1000;
  if (r() < 0.05) next.status = next.status === 'online' ? 'stale' : 'online';
  if (r() < 0.05) next.host = r() < 0.5 ? null : { ...hostOf(r) };
  if (r() < 0.03)
    next.gpus =
      next.gpus.length > 1 && r() < 0.5
        ? next.gpus.slice(1)
        : [...next.gpus, gpu(Math.max(-1, ...next.gpus.map((g) => g.index)) + 1)];
  for (const g of next.gpus) {
    const x = r();
    if (x < 0.3) g.utilizationGpuPercent = Math.floor(r() * 101);
    else if (x < 0.35) g.utilizationGpuPercent = null;
    if (r() < 0.2) g.powerDrawWatts = Math.round(r() * 7000) / 10;
    if (r() < 0.05) g.users = r() < 0.5 ? [] : ['alice', 'bob'].slice(0, 1 + Math.floor(r() * 2));
    if (r() < 0.05) g.project = r() < 0.5 ? null : 'chem';
    if (r() < 0.03) g.idleHeld = r() < 0.5; // a key that appears
    if (r() < 0.02) delete g.idleHeld; // … and goes away
    if (r() < 0.02) g.clocksEventReasons = r() < 0.5 ? ['gpu_idle'] : [];
  }
  return next;
}

function hostOf(r: () => number) {
  return {
    cpuPercent: Math.round(r() * 1000) / 10,
    memoryUsedBytes: 1024,
    memoryTotalBytes: 4096,
    load1: 1,
    load5: 1,
    load15: 1,
    netRxBytesPerSec: null,
    netTxBytesPerSec: null,
    uptimeSeconds: 100,
  };
}

describe('fleet patches: encode (server) → apply (dashboard)', () => {
  it.each([1, 2, 3])(
    'round trip, seed %i: the dashboard’s node equals the server’s after every delta',
    (seed) => {
      const r = rng(seed);
      let server = node(8);
      let dashboard = wire(server);
      const seen = { patch: 0, full: 0, unchanged: 0 };
      let patchBytes = 0;
      let fullBytes = 0;
      for (let i = 0; i < 800; i++) {
        const next = mutate(server, r);
        const res = encodeNodePatch(server, next);
        if (res === 'full') {
          seen.full++;
          dashboard = wire(next);
        } else if (res === 'unchanged') {
          seen.unchanged++;
          expect(wire(next)).toEqual(wire(server));
        } else {
          seen.patch++;
          const sent = wire(res);
          expect(NodePatchSchema.parse(sent)).toEqual(sent);
          patchBytes += JSON.stringify(sent).length;
          fullBytes += JSON.stringify(next).length;
          dashboard = applyNodePatch(dashboard, sent);
        }
        expect(dashboard, `step ${i}`).toEqual(wire(next));
        expect(NodeViewSchema.parse(dashboard)).toEqual(dashboard);
        server = next;
      }
      expect(seen.patch).toBeGreaterThan(seen.full);
      expect(seen.unchanged).toBeGreaterThan(0);
      expect(patchBytes).toBeLessThan(fullBytes / 5);
    },
  );

  it('a patch holds only what changed; GPUs by index', () => {
    const a = node(2);
    const b = { ...a, lastSeen: 5, gpus: [a.gpus[0]!, { ...a.gpus[1]!, temperatureCelsius: 70 }] };
    expect(encodeNodePatch(a, b)).toEqual({
      node: 'node-a',
      lastSeen: 5,
      gpus: [{ index: 1, temperatureCelsius: 70 }],
    });
    expect(encodeNodePatch(a, { ...a, gpus: a.gpus.map((g) => ({ ...g })) })).toBe('unchanged');
  });

  it('in full when a patch cannot say it: GPU list changed, a GPU replaced, a key gone', () => {
    const a = node(2);
    expect(encodeNodePatch(a, node(3))).toBe('full');
    expect(encodeNodePatch(a, { ...a, gpus: [a.gpus[0]!, { ...a.gpus[1]!, uuid: 'GPU-new' }] })).toBe('full');
    const withKey = { ...a, gpus: [{ ...a.gpus[0]!, idleHeld: true }, a.gpus[1]!] };
    expect(encodeNodePatch(a, withKey)).toEqual({ node: 'node-a', gpus: [{ index: 0, idleHeld: true }] });
    expect(encodeNodePatch(withKey, a)).toBe('full');
    // undefined is "absent" on the wire: going to undefined is a key gone
    expect(
      encodeNodePatch(withKey, {
        ...withKey,
        gpus: [{ ...withKey.gpus[0]!, idleHeld: undefined }, a.gpus[1]!],
      }),
    ).toBe('full');
  });

  it('apply leaves the old node as it was and keeps unpatched GPU objects', () => {
    const a = node(2);
    const b = applyNodePatch(a, { node: 'node-a', gpus: [{ index: 1, temperatureCelsius: 70 }] });
    expect(a.gpus[1]!.temperatureCelsius).toBe(50);
    expect(b.gpus[0]).toBe(a.gpus[0]);
    expect(b.gpus[1]!.temperatureCelsius).toBe(70);
  });
});
