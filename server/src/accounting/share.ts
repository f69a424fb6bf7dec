/**
 * Fair share: busy and idle-held GPU-hours used vs the agreed share of a project or institution,
 * per month or ISO week (server time zone). Idle-held GPU-hours count against the holder.
 * A monthly share applies to a week as `share × week hours / month hours` (the month of the
 * week's Thursday); a percentage is of the centre's GPU-hours in the period
 * (`centreGpus × period hours`).
 */
import type { ShareStatus } from '@gpupulse/protocol';
import type { AgreedShare } from '../projects/projects-file.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export type SharePeriod = 'month' | 'week';

export interface PeriodRange {
  kind: SharePeriod;
  start: number;
  end: number;
  /** `2026-11` or `2026-W47`. */
  label: string;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The month or ISO week containing `t` (local time). */
export function periodAt(t: number, kind: SharePeriod): PeriodRange {
  const d = new Date(t);
  if (kind === 'month') {
    const start = new Date(d.getFullYear(), d.getMonth(), 1).getTime();
    const end = new Date(d.getFullYear(), d.getMonth() + 1, 1).getTime();
    return { kind, start, end, label: `${d.getFullYear()}-${pad(d.getMonth() + 1)}` };
  }
  const s = new Date(d.getFullYear(), d.getMonth(), d.getDate() - ((d.getDay() + 6) % 7));
  const e = new Date(s.getFullYear(), s.getMonth(), s.getDate() + 7);
  const thu = new Date(s.getFullYear(), s.getMonth(), s.getDate() + 3);
  const jan4 = new Date(thu.getFullYear(), 0, 4);
  const week1 = new Date(jan4.getFullYear(), 0, 4 - ((jan4.getDay() + 6) % 7));
  const week = Math.round((thu.getTime() - week1.getTime()) / (7 * DAY) - 3 / 7) + 1;
  return { kind, start: s.getTime(), end: e.getTime(), label: `${thu.getFullYear()}-W${pad(week)}` };
}

/** Parses `2026-11` (month) or `2026-W47` (ISO week); null when malformed or out of range. */
export function parsePeriod(text: string): PeriodRange | null {
  const m = /^(\d{4})-(\d{2})$/.exec(text);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12) return null;
    return periodAt(new Date(y, mo - 1, 1).getTime(), 'month');
  }
  const w = /^(\d{4})-W(\d{2})$/.exec(text);
  if (w) {
    const y = Number(w[1]);
    const wk = Number(w[2]);
    if (y < 1970 || y > 2200 || wk < 1 || wk > 53) return null;
    const jan4 = new Date(y, 0, 4);
    const monday = new Date(y, 0, 4 - ((jan4.getDay() + 6) % 7) + (wk - 1) * 7, 12);
    const p = periodAt(monday.getTime(), 'week');
    return p.label === text ? p : null;
  }
  return null;
}

/** The period before `p`. */
export function previousPeriod(p: PeriodRange): PeriodRange {
  return periodAt(p.start - HOUR, p.kind);
}

const r4 = (v: number) => Math.round(v * 10_000) / 10_000;

/** Agreed GPU-hours of a share in a period (null without a share). */
export function agreedGpuHours(
  share: AgreedShare | null | undefined,
  period: PeriodRange,
  centreGpus: number,
): number | null {
  if (!share) return null;
  const hours = (period.end - period.start) / HOUR;
  if ('percent' in share) return (share.percent / 100) * centreGpus * hours;
  if (period.kind === 'month') return share.gpuHoursPerMonth;
  const mid = period.start + 3.5 * DAY;
  const month = periodAt(mid, 'month');
  return (share.gpuHoursPerMonth * hours) / ((month.end - month.start) / HOUR);
}

export function shareStatus(opts: {
  share: AgreedShare | null | undefined;
  period: PeriodRange;
  busyGpuHours: number;
  idleHeldGpuHours: number;
  centreGpus: number;
  now: number;
}): ShareStatus {
  const { period } = opts;
  const agreed = agreedGpuHours(opts.share, period, opts.centreGpus);
  const used = opts.busyGpuHours + opts.idleHeldGpuHours;
  const elapsed = Math.min(1, Math.max(0, (opts.now - period.start) / (period.end - period.start)));
  const pace = agreed === null ? null : agreed * elapsed;
  return {
    period: period.kind,
    periodStart: period.start,
    periodEnd: period.end,
    agreedGpuHours: agreed === null ? null : r4(agreed),
    agreed: opts.share ?? null,
    busyGpuHours: r4(opts.busyGpuHours),
    idleHeldGpuHours: r4(opts.idleHeldGpuHours),
    usedGpuHours: r4(used),
    leftGpuHours: agreed === null ? null : r4(agreed - used),
    usedPercent: agreed === null || agreed <= 0 ? null : r4((used / agreed) * 100),
    paceGpuHours: pace === null ? null : r4(pace),
    overShare: agreed !== null && used > agreed + 1e-9,
    overPace: pace !== null && used > pace + 1e-9,
  };
}

/** CO2e in kg of `kWh` of GPU energy: kWh × PUE × grid g/kWh / 1000. */
export function co2eKg(kWh: number, carbon: { gridGramsPerKWh: number; pue: number }): number {
  return (kWh * carbon.pue * carbon.gridGramsPerKWh) / 1000;
}
