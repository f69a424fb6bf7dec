/**
 * `GET /api/v1/history` and `GET /api/v1/usage`: parameter validation, tier choice, queries, and
 * the response shapes of `@gpupulse/protocol` (plus CSV for usage).
 */
import {
  type HistoryResponse,
  HistoryScopeSchema,
  type HistoryTier,
  UsageGroupBySchema,
  UsagePeriodSchema,
  type UsageResponse,
} from '@gpupulse/protocol';
import { z } from 'zod';
import type { StorageTier, TierPolicies } from '../rollups/retention.ts';
import {
  HISTORY_METRICS,
  type HistoryMetric,
  historySource,
  ROLLUP_MEASUREMENTS,
  USAGE_SUM_FIELDS,
} from '../storage/schema.ts';
import type { QueryBackend } from './query-backend.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface TierLimits {
  /** Raw tier for ranges up to this long (default 6 h) … */
  rawMaxSpanMs: number;
  /** … 1-minute tier up to this (default 14 d); 1-hour beyond. */
  minuteMaxSpanMs: number;
  /** How far back each tier reaches (its retention): raw 14 d, 1m 180 d. */
  rawRetentionMs: number;
  minuteRetentionMs: number;
}

export const DEFAULT_TIER_LIMITS: TierLimits = {
  rawMaxSpanMs: 6 * HOUR,
  minuteMaxSpanMs: 14 * DAY,
  rawRetentionMs: 14 * DAY,
  minuteRetentionMs: 180 * DAY,
};

/** Most points per series a history answer carries; the step grows to stay under it. */
export const MAX_POINTS = 1500;

/** Raw tier ≤ 6 h, 1-minute ≤ 14 d, 1-hour beyond — and never a tier whose retention ended before `from`. */
export function chooseTier(from: number, to: number, now: number, limits = DEFAULT_TIER_LIMITS): HistoryTier {
  const span = to - from;
  const age = now - from;
  if (span <= limits.rawMaxSpanMs && age <= limits.rawRetentionMs) return 'raw';
  if (span <= limits.minuteMaxSpanMs && age <= limits.minuteRetentionMs) return '1m';
  return '1h';
}

const NICE_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800,
].map((s) => s * SECOND);

/** The smallest "nice" step ≥ max(tier minimum, requested, span / MAX_POINTS). */
export function chooseStep(span: number, tierMinMs: number, requested: number | null): number {
  const need = Math.max(tierMinMs, requested ?? 0, Math.ceil(span / MAX_POINTS));
  return NICE_STEPS.find((s) => s >= need) ?? Math.ceil(need / DAY) * DAY;
}

// ---- parameters ----

const DURATION_MS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY };

/** Times the APIs accept, ms since the epoch: 1970-01-01 … 2286-11-20. */
const MIN_TIME = 0;
const MAX_TIME = 1e13;
/** Largest `step` (a year). */
const MAX_STEP = 366 * DAY;
/** Longest range of one request. */
const MAX_SPAN = 5 * 366 * DAY;

/** ms since the epoch, an ISO 8601 date, or `now`, `now-6h`, `-30d` (relative to now). */
function timeParam(name: string, now: number) {
  return z
    .string()
    .max(64)
    .transform((s, ctx) => {
      const rel = /^(?:now)?\s*-\s*(\d+)(ms|s|m|h|d|w)$/.exec(s.trim());
      let t: number = Number.NaN;
      if (s.trim() === 'now') t = now;
      else if (rel) t = now - Number(rel[1]) * DURATION_MS[rel[2]!]!;
      else if (/^\d{1,15}$/.test(s)) t = Number(s);
      else if (/^\d{4}-\d{2}-\d{2}/.test(s)) t = Date.parse(s);
      if (Number.isNaN(t)) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be ms since the epoch, an ISO 8601 date, or relative like now-6h`,
        });
        return z.NEVER;
      }
      if (!(t >= MIN_TIME && t <= MAX_TIME)) {
        ctx.addIssue({ code: 'custom', message: `${name} must lie between 1970 and 2286` });
        return z.NEVER;
      }
      return t;
    });
}

const durationParam = z
  .string()
  .max(32)
  .transform((s, ctx) => {
    const m = /^(\d+)(ms|s|m|h|d|w)?$/.exec(s.trim());
    if (!m || Number(m[1]) <= 0) {
      ctx.addIssue({ code: 'custom', message: 'step must be a positive duration like 30s, 5m, 1h (or ms)' });
      return z.NEVER;
    }
    const ms = Number(m[1]) * DURATION_MS[m[2] ?? 'ms']!;
    if (!(ms <= MAX_STEP)) {
      ctx.addIssue({ code: 'custom', message: 'step must be at most 366d' });
      return z.NEVER;
    }
    return ms;
  });

function describe(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const key = i.path.join('.');
      return key && !i.message.startsWith(key) ? `${key}: ${i.message}` : i.message;
    })
    .join('; ');
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'VALIDATION' | 'UNAVAILABLE' | 'NOT_FOUND',
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function parse<T extends z.ZodTypeAny>(schema: T, params: URLSearchParams): z.output<T> {
  const obj: Record<string, string> = {};
  for (const [k, v] of params) obj[k] = v;
  const r = schema.safeParse(obj);
  if (!r.success) throw new ApiError(400, 'VALIDATION', describe(r.error));
  return r.data;
}

function checkRange(from: number, to: number): void {
  if (from >= to) throw new ApiError(400, 'VALIDATION', 'from must be before to');
  if (to - from > MAX_SPAN)
    throw new ApiError(400, 'VALIDATION', 'from: the range from … to is longer than 5 years');
}

export interface HistoryDeps {
  backend: QueryBackend;
  policies: TierPolicies;
  now: () => number;
  limits?: TierLimits;
  /** Server's UTC offset at a time, minutes east of UTC (default: the local zone's). */
  utcOffsetMinutes?: (t: number) => number;
  /** 1h rollups are written this long after the hour ends (usage reads the tail from the 1m tier). */
  rollupGraceMs?: number;
}

// ---- history ----

export async function queryHistory(deps: HistoryDeps, params: URLSearchParams): Promise<HistoryResponse> {
  const now = deps.now();
  const schema = z
    .strictObject({
      scope: HistoryScopeSchema,
      id: z
        .string()
        .min(1)
        .max(256)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
        .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
        .optional(),
      metrics: z
        .string()
        .max(256)
        .default('utilization')
        .transform((s, ctx) => {
          const list = [
            ...new Set(
              s
                .split(',')
                .map((m) => m.trim())
                .filter(Boolean),
            ),
          ];
          for (const m of list) {
            if (!(HISTORY_METRICS as readonly string[]).includes(m)) {
              ctx.addIssue({
                code: 'custom',
                message: `unknown metric "${m.slice(0, 40)}" (known: ${HISTORY_METRICS.join(', ')})`,
              });
              return z.NEVER;
            }
          }
          if (list.length === 0) {
            ctx.addIssue({ code: 'custom', message: 'at least one metric' });
            return z.NEVER;
          }
          return list as HistoryMetric[];
        }),
      from: timeParam('from', now).optional(),
      to: timeParam('to', now).optional(),
      step: durationParam.optional(),
    })
    .superRefine((v, ctx) => {
      if (v.scope !== 'cluster' && !v.id)
        ctx.addIssue({ code: 'custom', path: ['id'], message: `scope ${v.scope} needs an id` });
    });
  const p = parse(schema, params);
  const to = p.to ?? now;
  const from = Math.max(MIN_TIME, p.from ?? to - HOUR);
  checkRange(from, to);
  const limits = deps.limits ?? DEFAULT_TIER_LIMITS;
  const minStepOf = (tier: HistoryTier) =>
    tier === 'raw'
      ? p.scope === 'project' || p.scope === 'cluster'
        ? 10 * SECOND
        : SECOND
      : tier === '1m'
        ? MINUTE
        : HOUR;
  const tier0 = chooseTier(from, to, now, limits);
  for (const t of [tier0, ...FINER[tier0]]) {
    const missing = p.metrics.filter((m) => !historySource(p.scope, m, t));
    if (missing.length)
      throw new ApiError(
        400,
        'VALIDATION',
        `metric ${missing.join(', ')} is not available for scope ${p.scope}`,
      );
  }
  const where: Record<string, string> = {};
  const groupBy: string[] = [];
  if (p.scope === 'gpu') where.uuid = p.id!;
  if (p.scope === 'node') {
    where.host = p.id!;
    groupBy.push('uuid');
  }
  if (p.scope === 'project') where.project = p.id!;

  /** One query of the asked metrics in one tier over [queryFrom, to). */
  const run = async (tier: HistoryTier, queryFrom: number) => {
    const stepMs = chooseStep(to - queryFrom, minStepOf(tier), p.step ?? null);
    const sources = p.metrics.map((m) => ({ metric: m, src: historySource(p.scope, m, tier)! }));
    const alignedFrom = Math.floor(queryFrom / stepMs) * stepMs;
    const series = await deps.backend.aggregate({
      measurement: sources[0]!.src.measurement,
      rp: deps.policies[tier as StorageTier] ?? null,
      fields: sources.map((s) => ({ field: s.src.field, fn: 'mean' as const })),
      where,
      from: alignedFrom,
      to,
      stepMs,
      groupBy,
      fill: 'null',
    });
    const out: HistoryResponse['series'] = [];
    let first: number | null = null;
    for (const [i, s] of sources.entries()) {
      for (const ser of series) {
        const points = ser.rows.map((r) => [r[0], round(r[i + 1] ?? null)] as [number, number | null]);
        const f = points.find(([, v]) => v !== null)?.[0];
        if (f !== undefined && (first === null || f < first)) first = f;
        out.push({ metric: s.metric, key: p.scope === 'node' ? (ser.tags.uuid ?? null) : null, points });
      }
      if (series.length === 0 && p.scope !== 'node') out.push({ metric: s.metric, key: null, points: [] });
    }
    return { tier, stepMs, alignedFrom, out, first };
  };

  // The tier follows the data that exists: a range longer than the history is answered from the
  // finest tier that holds all of that history (a new installation's 30 days: minute or raw
  // points over its first hours, not one hourly mean or nothing because no hour is rolled up yet).
  // Established histories cost one query; the answer's `from` is still the asked range's start.
  let r = await run(tier0, from);
  for (const finer of FINER[tier0]) {
    const maxSpan = finer === 'raw' ? limits.rawMaxSpanMs : limits.minuteMaxSpanMs;
    const retention = finer === 'raw' ? limits.rawRetentionMs : limits.minuteRetentionMs;
    if (r.first !== null && to - r.first > maxSpan) break;
    const queryFrom = Math.max(from, to - maxSpan, r.first ?? Number.NEGATIVE_INFINITY);
    if (now - queryFrom > retention) break;
    const next = await run(finer, queryFrom);
    if (next.first === null && r.first !== null) break; // the finer tier has nothing the coarse one has
    r = next;
  }
  const alignedFrom = Math.floor(from / r.stepMs) * r.stepMs;
  return {
    scope: p.scope,
    id: p.id ?? null,
    tier: r.tier,
    from: alignedFrom,
    to,
    stepMs: r.stepMs,
    series: r.out,
  };
}

/** Finer tiers to fall back to, coarse to fine. */
const FINER: Record<HistoryTier, HistoryTier[]> = { '1h': ['1m', 'raw'], '1m': ['raw'], raw: [] };

const round = (v: number | null) => (v === null ? null : Math.round(v * 10_000) / 10_000);

// ---- usage ----

export interface UsageQuery {
  from: number;
  to: number;
  groupBy: 'project' | 'user' | 'institution';
  period: 'day' | 'week' | 'month';
  format: 'json' | 'csv';
}

export function parseUsageParams(params: URLSearchParams, now: number, acceptCsv: boolean): UsageQuery {
  const schema = z.strictObject({
    from: timeParam('from', now).optional(),
    to: timeParam('to', now).optional(),
    groupBy: UsageGroupBySchema.default('project'),
    period: UsagePeriodSchema.default('day'),
    format: z.enum(['json', 'csv']).optional(),
  });
  const p = parse(schema, params);
  const to = p.to ?? now;
  const from = Math.max(MIN_TIME, p.from ?? to - 30 * DAY);
  checkRange(from, to);
  return { from, to, groupBy: p.groupBy, period: p.period, format: p.format ?? (acceptCsv ? 'csv' : 'json') };
}

const localOffset = (t: number) => -new Date(t).getTimezoneOffset();

/** Start of the local day / ISO week (Monday) / month containing `t`, in the server's time zone. */
export function periodStart(t: number, period: 'day' | 'week' | 'month'): number {
  const d = new Date(t);
  d.setHours(0, 0, 0, 0);
  if (period === 'week') d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  if (period === 'month') d.setDate(1);
  return d.getTime();
}

/**
 * GPU-hours per group and period, split busy / idle-held, with energy. Reads the 1-hour rollups
 * for hours already written and the 1-minute rollups for the rest (the current hour), so the
 * numbers are current to the last written minute. Days follow the server's local time zone.
 */
export async function queryUsage(deps: HistoryDeps, q: UsageQuery): Promise<UsageResponse> {
  const now = deps.now();
  const grace = deps.rollupGraceMs ?? 30_000;
  const hoursWrittenUntil = Math.floor((now - grace) / HOUR) * HOUR;
  const split = Math.min(q.to, Math.max(q.from, hoursWrittenUntil));
  const kind = q.groupBy === 'user' ? 'user' : 'project';
  const tag = q.groupBy;
  const offsetMs = ((deps.utcOffsetMinutes ?? localOffset)(q.from) * -MINUTE) % DAY;
  const fields = [
    { field: USAGE_SUM_FIELDS.busy, fn: 'sum' as const },
    { field: USAGE_SUM_FIELDS.idle, fn: 'sum' as const },
    { field: USAGE_SUM_FIELDS.energy, fn: 'sum' as const },
    { field: USAGE_SUM_FIELDS.idleEnergy, fn: 'sum' as const },
  ];
  const parts: Array<[StorageTier, number, number]> = [];
  if (split > q.from) parts.push(['1h', q.from, split]);
  if (q.to > split) parts.push(['1m', split, q.to]);
  const results = await Promise.all(
    parts.map(([tier, from, to]) =>
      deps.backend.aggregate({
        measurement: ROLLUP_MEASUREMENTS[kind][tier as '1m' | '1h'],
        rp: deps.policies[tier] ?? null,
        fields,
        from,
        to,
        stepMs: DAY,
        offsetMs,
        groupBy: [tag],
        fill: 'none',
      }),
    ),
  );
  const acc = new Map<
    string,
    { periodStart: number; key: string; inUse: number; idle: number; energy: number; idleEnergy: number }
  >();
  for (const series of results) {
    for (const s of series) {
      const key = s.tags[tag] || (q.groupBy === 'user' ? 'unknown' : 'unassigned');
      for (const [t, inUse, idle, energy, idleEnergy] of s.rows) {
        // Buckets start at local midnight as of `from`; an hour later is still the same day after
        // a DST change. The first bucket may start before `from`.
        const ps = periodStart(t < q.from ? q.from : t + HOUR, q.period);
        const k = `${ps}\u0000${key}`;
        const a = acc.get(k) ?? { periodStart: ps, key, inUse: 0, idle: 0, energy: 0, idleEnergy: 0 };
        a.inUse += inUse ?? 0;
        a.idle += idle ?? 0;
        a.energy += energy ?? 0;
        a.idleEnergy += idleEnergy ?? 0;
        acc.set(k, a);
      }
    }
  }
  const r6 = (v: number) => Math.round(v * 1e6) / 1e6;
  const rows = [...acc.values()]
    .sort((a, b) => a.periodStart - b.periodStart || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((a) => ({
      periodStart: a.periodStart,
      key: a.key,
      busyGpuHours: r6(Math.max(0, a.inUse - a.idle) / 3600),
      idleHeldGpuHours: r6(a.idle / 3600),
      gpuHours: r6(a.inUse / 3600),
      energyKWh: r6(a.energy / 1000),
      idleHeldEnergyKWh: r6(a.idleEnergy / 1000),
    }));
  return { from: q.from, to: q.to, groupBy: q.groupBy, period: q.period, rows };
}

/** A CSV cell: quoted when needed; a leading `= + - @` is defused (spreadsheet formula injection). */
function csvCell(v: string): string {
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function usageCsv(u: UsageResponse): string {
  const opt = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  const lines = [
    `period_start,${u.groupBy},busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh,idle_held_energy_kwh,co2e_kg,agreed_gpu_hours,share_used_percent,over_share`,
  ];
  for (const r of u.rows) {
    lines.push(
      [
        new Date(r.periodStart).toISOString(),
        csvCell(r.key),
        String(r.busyGpuHours),
        String(r.idleHeldGpuHours),
        String(r.gpuHours),
        String(r.energyKWh),
        opt(r.idleHeldEnergyKWh),
        opt(r.co2eKg),
        opt(r.share?.agreedGpuHours),
        opt(r.share?.usedPercent),
        r.share ? String(r.share.overShare) : '',
      ].join(','),
    );
  }
  return `${lines.join('\r\n')}\r\n`;
}
