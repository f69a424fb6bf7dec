/**
 * Time-bucketed aggregation over stored points, the one query shape the history and usage APIs
 * need: `fn(field)` per `step` (optionally offset), filtered by tag equality, grouped by tags.
 * `InfluxBackend` builds InfluxQL (every identifier double-quoted, every value single-quoted and
 * mapped as line protocol stores it, times as RFC 3339 literals); `MemoryBackend` computes the same from the in-memory store.
 */
import { quoteIdent, quoteString } from '../storage/influx-store.ts';
import { storedName } from '../storage/line-protocol.ts';
import type { MemoryStore } from '../storage/memory-store.ts';
import type { MetricPoint, MetricStore } from '../storage/metric-store.ts';

export type AggFn = 'mean' | 'max' | 'sum';

export interface AggQuery {
  measurement: string;
  /** Retention policy (InfluxDB 1.x); null/absent: the default. */
  rp?: string | null;
  fields: ReadonlyArray<{ field: string; fn: AggFn }>;
  /** Tag equality filters. */
  where?: Record<string, string>;
  /** [from, to), ms. */
  from: number;
  to: number;
  stepMs: number;
  /** Bucket boundaries at `offsetMs + k·stepMs` (InfluxQL `GROUP BY time(step, offset)`). */
  offsetMs?: number;
  groupBy?: readonly string[];
  /** `null`: every bucket in range, empty ones with nulls; `none`: only buckets with data. */
  fill: 'null' | 'none';
}

export interface AggSeries {
  tags: Record<string, string>;
  /** [bucket start ms, value per field (in query order)]. */
  rows: Array<[number, ...(number | null)[]]>;
}

export interface QueryBackend {
  aggregate(q: AggQuery): Promise<AggSeries[]>;
}

const normOffset = (offset: number, step: number) => ((offset % step) + step) % step;

/** The InfluxQL of one aggregation (exported for tests). */
export function buildInfluxQL(q: AggQuery, database: string): string {
  const select = q.fields
    .map((f, i) => `${f.fn}(${quoteIdent(f.field)}) AS ${quoteIdent(`v${i}`)}`)
    .join(', ');
  const from = q.rp
    ? `${quoteIdent(database)}.${quoteIdent(q.rp)}.${quoteIdent(q.measurement)}`
    : quoteIdent(q.measurement);
  // Tag values are compared as line protocol stored them (see storage/line-protocol.ts).
  const conds = Object.entries(q.where ?? {}).map(
    ([k, v]) => `${quoteIdent(k)} = ${quoteString(storedName(v))}`,
  );
  conds.push(`time >= ${quoteString(new Date(q.from).toISOString())}`);
  conds.push(`time < ${quoteString(new Date(q.to).toISOString())}`);
  const step = Math.max(1, Math.round(q.stepMs));
  const offset = normOffset(Math.round(q.offsetMs ?? 0), step);
  const group = [`time(${step}ms${offset ? `, ${offset}ms` : ''})`, ...(q.groupBy ?? []).map(quoteIdent)];
  return `SELECT ${select} FROM ${from} WHERE ${conds.join(' AND ')} GROUP BY ${group.join(', ')} fill(${q.fill})`;
}

export class InfluxBackend implements QueryBackend {
  constructor(
    private readonly store: MetricStore,
    private readonly database: string,
  ) {}

  async aggregate(q: AggQuery): Promise<AggSeries[]> {
    const res = await this.store.query(buildInfluxQL(q, this.database));
    return res.series.map((s) => {
      const idx = q.fields.map((_, i) => s.columns.indexOf(`v${i}`));
      return {
        tags: s.tags ?? {},
        rows: s.values.map((row) => {
          const out: [number, ...(number | null)[]] = [Number(row[0])];
          for (const i of idx) {
            const v = i >= 0 ? row[i] : null;
            out.push(typeof v === 'number' ? v : null);
          }
          return out;
        }),
      };
    });
  }
}

interface Acc {
  sum: number;
  n: number;
  max: number;
}

/** The same aggregation over the in-memory store (recent data only, as far as it keeps it). */
export class MemoryBackend implements QueryBackend {
  constructor(private readonly store: MemoryStore) {}

  async aggregate(q: AggQuery): Promise<AggSeries[]> {
    const step = Math.max(1, Math.round(q.stepMs));
    const offset = normOffset(Math.round(q.offsetMs ?? 0), step);
    const bucketOf = (t: number) => Math.floor((t - offset) / step) * step + offset;
    const where = Object.entries(q.where ?? {});
    const groupBy = q.groupBy ?? [];
    const groups = new Map<string, { tags: Record<string, string>; buckets: Map<number, Acc[]> }>();
    for (const p of this.store.points()) {
      if (p.measurement !== q.measurement || p.ts < q.from || p.ts >= q.to) continue;
      if (!where.every(([k, v]) => p.tags[k] === v)) continue;
      const tags: Record<string, string> = {};
      for (const k of groupBy) tags[k] = p.tags[k] ?? '';
      const key = JSON.stringify(groupBy.map((k) => tags[k]));
      let g = groups.get(key);
      if (!g) {
        g = { tags, buckets: new Map() };
        groups.set(key, g);
      }
      const b = bucketOf(p.ts);
      let accs = g.buckets.get(b);
      if (!accs) {
        accs = q.fields.map(() => ({ sum: 0, n: 0, max: Number.NEGATIVE_INFINITY }));
        g.buckets.set(b, accs);
      }
      q.fields.forEach((f, i) => {
        const v = value(p, f.field);
        if (v === undefined) return;
        const a = accs[i]!;
        a.sum += v;
        a.n++;
        if (v > a.max) a.max = v;
      });
    }
    const out: AggSeries[] = [];
    const keys = [...groups.keys()].sort();
    for (const key of keys) {
      const g = groups.get(key)!;
      const starts =
        q.fill === 'null'
          ? range(bucketOf(q.from), q.to, step)
          : [...g.buckets.keys()].filter((b) => g.buckets.get(b)!.some((a) => a.n > 0)).sort((a, b) => a - b);
      out.push({
        tags: g.tags,
        rows: starts.map((t) => {
          const accs = g.buckets.get(t);
          const vals = q.fields.map((f, i) => {
            const a = accs?.[i];
            if (!a || a.n === 0) return null;
            return f.fn === 'mean' ? a.sum / a.n : f.fn === 'sum' ? a.sum : a.max;
          });
          return [t, ...vals] as [number, ...(number | null)[]];
        }),
      });
    }
    return out;
  }
}

function range(start: number, end: number, step: number): number[] {
  const out: number[] = [];
  for (let t = start; t < end; t += step) out.push(t);
  return out;
}

function value(p: MetricPoint, field: string): number | undefined {
  const v = p.floats?.[field] ?? p.ints?.[field];
  return typeof v === 'number' ? v : undefined;
}
