import type { GpuProcess } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { ProcessDeltaTracker } from './collector.ts';

const p = (pid: number, mem: number | null, gpuUuid = 'GPU-a'): GpuProcess => ({
  gpuUuid,
  pid,
  usedMemoryMiB: mem,
  name: `p${pid}`,
  startedAt: 1000 + pid,
});

describe('ProcessDeltaTracker', () => {
  it('full first, then only changes (new, gone, memory moved > 5 %), nothing when nothing changed, full every minute', () => {
    const t = new ProcessDeltaTracker({ fullEveryMs: 60_000 });
    expect(t.next([p(1, 1000), p(2, 500)], 0)).toEqual({
      processes: [p(1, 1000), p(2, 500)],
      processesMode: 'full',
    });
    expect(t.next([p(1, 1040), p(2, 500)], 1000)).toEqual({}); // 4 % move: not a change
    expect(t.next([p(1, 1060), p(2, 500), p(3, 10)], 2000)).toEqual({
      processes: [p(1, 1060), p(3, 10)],
      processesMode: 'delta',
    });
    expect(t.next([p(1, 1060), p(3, null)], 3000)).toEqual({
      processes: [p(3, null)],
      processesMode: 'delta',
      processesGone: [{ gpuUuid: 'GPU-a', pid: 2 }],
    });
    // the same pid on another GPU is another process
    expect(t.next([p(1, 1060), p(3, null), p(1, 5, 'GPU-b')], 4000).processes).toEqual([p(1, 5, 'GPU-b')]);
    expect(t.next([p(1, 1060)], 60_000)).toEqual({ processes: [p(1, 1060)], processesMode: 'full' });
    expect(t.next([], 61_000)).toEqual({
      processes: [],
      processesMode: 'delta',
      processesGone: [{ gpuUuid: 'GPU-a', pid: 1 }],
    });
    t.forceFull();
    expect(t.next([], 62_000)).toEqual({ processes: [], processesMode: 'full' });
  });

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
