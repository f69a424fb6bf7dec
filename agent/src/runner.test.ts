import { SampleSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import type { Collector } from './collectors/types.ts';
import { createSilentLogger } from './logger.ts';
import { MemoryQueue } from './queue.ts';
import { Runner } from './runner.ts';

const gpu = { index: 0, uuid: 'GPU-a', name: 'Test GPU', state: 'ok' as const };
const okGpu: Collector = {
  name: 'gpu',
  collect: async () => ({
    gpuCollector: 'ok',
    gpus: [
      {
        ...gpu,
        utilizationGpuPercent: 1,
        utilizationMemoryPercent: null,
        memoryUsedMiB: null,
        memoryTotalMiB: null,
        temperatureCelsius: null,
        powerDrawWatts: null,
        powerLimitWatts: null,
        fanSpeedPercent: null,
        pstate: null,
        clocksSmMHz: null,
        clocksMemoryMHz: null,
      },
    ],
  }),
};
const failing: Collector = {
  name: 'host',
  collect: async () => {
    throw new Error('boom');
  },
  fallback: () => ({ host: null }),
};
const hanging: Collector = { name: 'slow', collect: () => new Promise(() => {}) };

describe('Runner', () => {
  it('one failing and one hanging collector never stop the others; counters per collector', async () => {
    const runner = new Runner({
      collectors: [okGpu, failing, hanging],
      intervalMs: 1000,
      timeoutMs: 50,
      logger: createSilentLogger(),
    });
    const a = await runner.collect();
    const b = await runner.collect();
    expect(SampleSchema.parse(a).gpus).toHaveLength(1);
    expect(a.gpuCollector).toBe('ok');
    expect(a.host).toBeNull();
    expect(b.seq).toBe(a.seq + 1);
    expect(b.agent?.collectorErrors).toEqual({ gpu: 0, host: 2, slow: 2 });
    expect(Object.keys(b.agent?.collectorDurationsMs ?? {}).sort()).toEqual(['gpu', 'host', 'slow']);
  });

  it('ticks on the interval and reports queue stats', async () => {
    const queue = new MemoryQueue(2);
    const samples: number[] = [];
    const runner = new Runner({
      collectors: [okGpu],
      intervalMs: 100,
      logger: createSilentLogger(),
      stats: () => ({ droppedSamples: queue.dropped, spoolSamples: queue.size }),
      onSample: (s) => {
        queue.push(s);
        samples.push(s.seq);
      },
    });
    runner.start();
    await new Promise((r) => setTimeout(r, 450));
    await runner.stop();
    expect(samples.length).toBeGreaterThanOrEqual(3);
    expect(samples).toEqual(samples.map((_, i) => i));
    expect(queue.size).toBe(2);
    expect(queue.dropped).toBe(samples.length - 2);
  });
});

describe('MemoryQueue', () => {
  const s = (seq: number) => ({ seq, ts: seq, gpuCollector: 'absent' as const, gpus: [], host: null });
  it('is bounded, drops the oldest and counts drops', () => {
    const q = new MemoryQueue(3);
    for (let i = 0; i < 5; i++) q.push(s(i));
    expect(q.size).toBe(3);
    expect(q.dropped).toBe(2);
    expect(q.oldest(10).map((x) => x.seq)).toEqual([2, 3, 4]);
    expect(q.newest()?.seq).toBe(4);
    expect(q.oldest(10, 4).map((x) => x.seq)).toEqual([2, 3]);
    expect(q.remove([2, 4, 99])).toBe(2);
    expect(q.newest()).toBeUndefined();
    q.countDropped(1);
    expect(q.dropped).toBe(3);
  });
});

describe('Runner: the first samples', () => {
  it('wait for the collectors to be ready (the first nvidia-smi round) instead of reporting zero GPUs', async () => {
    let ready = false;
    const slowGpu: Collector = {
      ...okGpu,
      ready: () =>
        new Promise<void>((r) =>
          setTimeout(() => {
            ready = true;
            r();
          }, 300),
        ),
      collect: async () => (ready ? okGpu.collect() : { gpuCollector: 'stale', gpus: [] }),
    };
    const samples: Array<{ gpus: number; at: number }> = [];
    const t0 = Date.now();
    const r = new Runner({
      collectors: [slowGpu],
      intervalMs: 50,
      logger: createSilentLogger(),
      onSample: (s) => samples.push({ gpus: s.gpus.length, at: Date.now() - t0 }),
    });
    r.start();
    await new Promise((res) => setTimeout(res, 600));
    await r.stop();
    expect(samples.length).toBeGreaterThan(2);
    expect(samples.every((s) => s.gpus === 1)).toBe(true);
    expect(samples[0]?.at).toBeGreaterThanOrEqual(300);
  });

  it('ready never comes: samples start after firstRoundTimeoutMs', async () => {
    const never: Collector = { ...okGpu, ready: () => new Promise<void>(() => {}) };
    const seqs: number[] = [];
    const r = new Runner({
      collectors: [never],
      intervalMs: 50,
      firstRoundTimeoutMs: 100,
      logger: createSilentLogger(),
      onSample: (s) => seqs.push(s.seq),
    });
    r.start();
    await new Promise((res) => setTimeout(res, 400));
    await r.stop();
    expect(seqs.length).toBeGreaterThan(2);
  });

  it('never gives two samples the same ts (ticks in one millisecond after a stall)', async () => {
    const r = new Runner({
      collectors: [okGpu],
      intervalMs: 1000,
      logger: createSilentLogger(),
      now: () => 1_750_000_000_000.4,
    });
    const a = await r.collect();
    const b = await r.collect();
    expect(a.ts).toBe(1_750_000_000_000);
    expect(b.ts).toBe(1_750_000_000_001);
    expect(b.seq).toBe(a.seq + 1);
  });
});
