/** Pure aggregation of usage rows and cluster history for the Trends view. */
import type { UsageResponse } from '@gpupulse/protocol';
import type { Point } from './history.ts';

type Row = UsageResponse['rows'][number];

export interface PeriodMatrix {
  periods: number[];
  /** Keys ordered by total GPU-hours, largest first. */
  keys: string[];
  busy: Map<string, number[]>;
  idle: Map<string, number[]>;
}

/** Busy / held-idle GPU-hours per key per period (zero where a key has no row). */
export function periodMatrix(rows: readonly Row[]): PeriodMatrix {
  const periods = [...new Set(rows.map((r) => r.periodStart))].sort((a, b) => a - b);
  const at = new Map(periods.map((p, i) => [p, i]));
  const totals = new Map<string, number>();
  const busy = new Map<string, number[]>();
  const idle = new Map<string, number[]>();
  for (const r of rows) {
    const i = at.get(r.periodStart) ?? 0;
    if (!busy.has(r.key)) {
      busy.set(r.key, new Array(periods.length).fill(0));
      idle.set(r.key, new Array(periods.length).fill(0));
    }
    (busy.get(r.key) as number[])[i] = ((busy.get(r.key) as number[])[i] ?? 0) + r.busyGpuHours;
    (idle.get(r.key) as number[])[i] = ((idle.get(r.key) as number[])[i] ?? 0) + r.idleHeldGpuHours;
    totals.set(r.key, (totals.get(r.key) ?? 0) + r.gpuHours);
  }
  const keys = [...totals].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).map(([k]) => k);
  return { periods, keys, busy, idle };
}

export interface KeyTotal {
  key: string;
  busy: number;
  idle: number;
  total: number;
  energyKWh: number;
}

/** Totals per key over the whole range, largest first; the rest beyond `limit` are left out. */
export function topKeys(rows: readonly Row[], limit = 10): KeyTotal[] {
  const m = new Map<string, KeyTotal>();
  for (const r of rows) {
    const e = m.get(r.key) ?? { key: r.key, busy: 0, idle: 0, total: 0, energyKWh: 0 };
    e.busy += r.busyGpuHours;
    e.idle += r.idleHeldGpuHours;
    e.total += r.gpuHours;
    e.energyKWh += r.energyKWh;
    m.set(r.key, e);
  }
  return [...m.values()].sort((a, b) => b.total - a.total || a.key.localeCompare(b.key)).slice(0, limit);
}

/** Energy (kWh) per period, summed over keys. */
export function energyByPeriod(rows: readonly Row[]): { periodStart: number; kwh: number }[] {
  const m = new Map<number, number>();
  for (const r of rows) m.set(r.periodStart, (m.get(r.periodStart) ?? 0) + r.energyKWh);
  return [...m].sort(([a], [b]) => a - b).map(([periodStart, kwh]) => ({ periodStart, kwh }));
}

export function usageTotals(rows: readonly Row[]): {
  gpuHours: number;
  idle: number;
  idleShare: number | null;
  energyKWh: number;
} {
  let gpuHours = 0;
  let idle = 0;
  let energyKWh = 0;
  for (const r of rows) {
    gpuHours += r.gpuHours;
    idle += r.idleHeldGpuHours;
    energyKWh += r.energyKWh;
  }
  return { gpuHours, idle, idleShare: gpuHours > 0 ? (100 * idle) / gpuHours : null, energyKWh };
}

/**
 * How much of the asked range the history covers: the first time with a value, and whether
 * that leaves a noticeably short history (more than a step and 5 % of the range missing).
 */
export function historyCoverage(
  points: readonly Point[],
  from: number,
  to: number,
  stepMs: number,
): { first: number | null; short: boolean; days: number } {
  const first = points.find(([, v]) => v !== null)?.[0] ?? null;
  if (first === null) return { first: null, short: true, days: 0 };
  const missing = first - from;
  return {
    first,
    short: missing > Math.max(stepMs, 0.05 * (to - from)),
    days: Math.floor((to - first) / 86_400_000),
  };
}

/** Mean of the non-null values. */
export function meanOf(points: readonly Point[]): number | null {
  let sum = 0;
  let n = 0;
  for (const [, v] of points)
    if (v !== null) {
      sum += v;
      n++;
    }
  return n ? sum / n : null;
}
