/**
 * Month-to-date (and week-to-date) GPU-hours per project from the rollup tiers, refreshed in the
 * background (default every 60 s) so `/api/v1/projects` can carry each project's and institution's
 * fair share without a query per request. Reads through the usage API's own query (1h tier for
 * written hours, 1m for the rest).
 */
import { type HistoryDeps, queryUsage } from '../history/history-api.ts';
import { type PeriodRange, periodAt, type SharePeriod } from './share.ts';

export interface PeriodTotals {
  busyGpuHours: number;
  idleHeldGpuHours: number;
  energyKWh: number;
  idleHeldEnergyKWh: number;
}

export interface PeriodUsage {
  period: PeriodRange;
  /** When the figures were read. */
  at: number;
  byProject: Map<string, PeriodTotals>;
}

/** GPU-hours per project in [period.start, to), summed over the period. */
export async function readPeriodUsage(
  history: HistoryDeps,
  period: PeriodRange,
  to: number,
): Promise<Map<string, PeriodTotals>> {
  const out = new Map<string, PeriodTotals>();
  if (to <= period.start) return out;
  const u = await queryUsage(history, {
    from: period.start,
    to: Math.min(to, period.end),
    groupBy: 'project',
    period: 'month',
    format: 'json',
  });
  for (const r of u.rows) {
    const t = out.get(r.key) ?? { busyGpuHours: 0, idleHeldGpuHours: 0, energyKWh: 0, idleHeldEnergyKWh: 0 };
    t.busyGpuHours += r.busyGpuHours;
    t.idleHeldGpuHours += r.idleHeldGpuHours;
    t.energyKWh += r.energyKWh;
    t.idleHeldEnergyKWh += r.idleHeldEnergyKWh ?? 0;
    out.set(r.key, t);
  }
  return out;
}

export class PeriodUsageCache {
  private current: PeriodUsage | null = null;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Failed refreshes (the last good figures stay). */
  errors = 0;

  constructor(
    private readonly opts: {
      history: HistoryDeps;
      now: () => number;
      kind?: SharePeriod;
      onError?: (err: unknown) => void;
    },
  ) {}

  /** The last figures read (null before the first refresh ends, or when the period has changed since). */
  latest(): PeriodUsage | null {
    const c = this.current;
    if (!c) return null;
    return this.opts.now() < c.period.end ? c : null;
  }

  refresh(): Promise<void> {
    if (this.running) return this.running;
    const now = this.opts.now();
    const period = periodAt(now, this.opts.kind ?? 'month');
    this.running = readPeriodUsage(this.opts.history, period, now)
      .then((byProject) => {
        this.current = { period, at: now, byProject };
      })
      .catch((err: unknown) => {
        this.errors++;
        this.opts.onError?.(err);
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  start(intervalMs = 60_000): void {
    if (this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
