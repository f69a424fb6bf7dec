import { RingBuffer } from './ring-buffer.ts';

/** Bounded timing figures for one kind of update (exposed on `window.__gpupulsePerf` for benchmarks). */
export interface PerfSeries {
  count: number;
  lastMs: number;
  maxMs: number;
  totalMs: number;
  recent: RingBuffer<number>;
}

const series = new Map<string, PerfSeries>();

function get(name: string): PerfSeries {
  let s = series.get(name);
  if (!s) {
    s = { count: 0, lastMs: 0, maxMs: 0, totalMs: 0, recent: new RingBuffer<number>(600) };
    series.set(name, s);
    if (typeof window !== 'undefined') {
      const w = window as unknown as { __gpupulsePerf?: Record<string, PerfSeries> };
      w.__gpupulsePerf ??= {};
      w.__gpupulsePerf[name] = s;
    }
  }
  return s;
}

export function recordDuration(name: string, ms: number): void {
  const s = get(name);
  s.count++;
  s.lastMs = ms;
  s.totalMs += ms;
  if (ms > s.maxMs) s.maxMs = ms;
  s.recent.push(ms);
}

/**
 * Times `fn` as a User Timing measure named `name` (visible to PerformanceObserver and the
 * DevTools timeline), then clears the marks so the browser's timing buffer does not grow.
 */
export function timed<T>(name: string, fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const end = performance.now();
    try {
      performance.measure(name, { start, end });
      performance.clearMeasures(name);
    } catch {
      // Older browsers without measure options: the figures below still count.
    }
    recordDuration(name, end - start);
  }
}

export function perfSeries(name: string): PerfSeries | undefined {
  return series.get(name);
}
