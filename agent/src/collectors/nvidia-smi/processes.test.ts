import type { GpuProcess } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';

const p = (pid: number, mem: number | null, gpuUuid = 'GPU-a'): GpuProcess => ({
  gpuUuid,
  pid,
  usedMemoryMiB: mem,
  name: `p${pid}`,
  startedAt: 1000 + pid,
});

// The encoder itself (full / delta / gone, round trip with the server's apply): protocol/src/process-delta.test.ts.
describe('process collector', () => {
  it('after a (re)connect the next list is full: the server may have missed deltas', async () => {
    const { createNvidiaSmiProcessCollector } = await import('./collector.ts');
    const smi = { available: true, state: 'ok', lastRound: [], computeApps: async () => [p(1, 10)] };
    let now = 0;
    const c = createNvidiaSmiProcessCollector(smi as never, { proc: null, now: () => now, maxReuseMs: 0 });
    expect((await c.collect()).processesMode).toBe('full');
    now = 1000;
    expect(await c.collect()).toEqual({});
    c.resync?.();
    now = 2000;
    expect(await c.collect()).toEqual({ processes: [p(1, 10)], processesMode: 'full' });
  });
});
