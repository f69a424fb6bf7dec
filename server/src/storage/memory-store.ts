import type { StorageInfo, StorageWarningCode } from '@gpupulse/protocol';
import {
  type EncodedPoint,
  jsonEncoding,
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  type QuerySeries,
  StoreQueryError,
} from './metric-store.ts';

export const MEMORY_STORE_WARNING =
  'in-memory storage: only the last 2 hours are kept and no history survives a restart ' +
  '(set GPUPULSE_INFLUX_URL or install influxd)';

export interface MemoryStoreOptions {
  /** Most points kept (default 200,000); the oldest are dropped beyond it, and counted. */
  maxPoints?: number;
  /** Points older than this are forgotten (default 2 h). */
  maxAgeMs?: number;
  /** Server clock (default Date.now). */
  now?: () => number;
  /** The warning shown in health and to dashboards (default MEMORY_STORE_WARNING). */
  warning?: string | null;
  /** Its code for dashboards to translate (default `memory` with the default warning, else none). */
  warningCode?: StorageWarningCode;
}

export interface SeriesQuery {
  measurement: string;
  field: string;
  /** Only points whose tags all equal these. */
  tags?: Record<string, string>;
  /** Inclusive bounds, ms. */
  from?: number;
  to?: number;
}

export interface SeriesValue {
  ts: number;
  value: number | string;
  tags: Record<string, string>;
}

/**
 * The in-memory twin of InfluxDB: a bounded ring of points (by count and by age). Drops caused by
 * the count bound are counted in `dropped`. As in InfluxDB, a point with the measurement, tags and
 * timestamp of a stored one replaces its fields (rollups rewritten by late merges stay one point). Queries: `readSeries()` and a small InfluxQL subset
 * (`SELECT * | f1, f2 FROM m [WHERE time >|>=|<|<= <n>ms | now() - <n><unit> AND "tag" = 'v' …] [LIMIT n]`).
 */
export class MemoryStore implements MetricStore {
  readonly kind = 'memory' as const;
  /** Points dropped because the store was full. */
  dropped = 0;
  private readonly ring: Array<MetricPoint | undefined>;
  /** Series key + time of each slot, and slot by key (points replaced in place). */
  private readonly keys: Array<string | undefined>;
  private readonly slotOf = new Map<string, number>();
  private head = 0;
  private count = 0;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private readonly warning: string | null;
  private readonly warningCode: StorageWarningCode | undefined;

  constructor(opts: MemoryStoreOptions = {}) {
    this.ring = new Array(Math.max(1, opts.maxPoints ?? 200_000));
    this.keys = new Array(this.ring.length);
    this.maxAgeMs = opts.maxAgeMs ?? 2 * 3600_000;
    this.now = opts.now ?? Date.now;
    this.warning = opts.warning === undefined ? MEMORY_STORE_WARNING : opts.warning;
    this.warningCode = opts.warningCode ?? (opts.warning === undefined ? 'memory' : undefined);
  }

  get size(): number {
    return this.count;
  }

  /** The point's JSON: this store keeps points as they are. */
  encode(point: MetricPoint): EncodedPoint {
    return jsonEncoding.encode(point);
  }

  writeEncoded(points: readonly EncodedPoint[]): Promise<void> {
    return this.write(points.map(jsonEncoding.decode));
  }

  async write(points: readonly MetricPoint[]): Promise<void> {
    const cap = this.ring.length;
    for (const p of points) {
      const key = pointKey(p);
      const slot = this.slotOf.get(key);
      if (slot !== undefined) {
        const old = this.ring[slot]!;
        this.ring[slot] = {
          ...old,
          ints: { ...old.ints, ...p.ints },
          floats: { ...old.floats, ...p.floats },
          strings: { ...old.strings, ...p.strings },
        };
        continue;
      }
      if (this.count === cap) {
        this.evictHead();
        this.dropped++;
      }
      const at = (this.head + this.count) % cap;
      this.ring[at] = p;
      this.keys[at] = key;
      this.slotOf.set(key, at);
      this.count++;
    }
    this.expire();
  }

  private evictHead(): void {
    const key = this.keys[this.head];
    if (key !== undefined && this.slotOf.get(key) === this.head) this.slotOf.delete(key);
    this.ring[this.head] = undefined;
    this.keys[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
  }

  /** Every stored point, oldest first (not sorted by timestamp). */
  points(): MetricPoint[] {
    this.expire();
    const out: MetricPoint[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.ring[(this.head + i) % this.ring.length]!);
    return out;
  }

  readSeries(q: SeriesQuery): SeriesValue[] {
    const out: SeriesValue[] = [];
    for (const p of this.points()) {
      if (p.measurement !== q.measurement) continue;
      if (q.from !== undefined && p.ts < q.from) continue;
      if (q.to !== undefined && p.ts > q.to) continue;
      if (q.tags && !Object.entries(q.tags).every(([k, v]) => p.tags[k] === v)) continue;
      const value = fieldValue(p, q.field);
      if (value === undefined) continue;
      out.push({ ts: p.ts, value, tags: p.tags });
    }
    return out.sort((a, b) => a.ts - b.ts);
  }

  async query(influxql: string): Promise<QueryResult> {
    const q = parseSelect(influxql, this.now());
    const rows = this.points()
      .filter((p) => p.measurement === q.measurement)
      .filter((p) => q.timeConds.every(([op, t]) => compare(p.ts, op, t)))
      .filter((p) => q.tagConds.every(([k, v]) => p.tags[k] === v))
      .sort((a, b) => a.ts - b.ts);
    let columns = q.columns;
    if (columns === '*') {
      const keys = new Set<string>();
      for (const p of rows) {
        for (const k of Object.keys(p.tags)) keys.add(k);
        for (const rec of [p.ints, p.floats, p.strings])
          if (rec) for (const k of Object.keys(rec)) keys.add(k);
      }
      columns = [...keys].sort();
    }
    const cols = columns;
    const limited = q.limit === null ? rows : rows.slice(0, q.limit);
    const values = limited
      .map((p) => [p.ts, ...cols.map((c) => fieldValue(p, c) ?? p.tags[c] ?? null)])
      .filter((row) => q.columns === '*' || row.slice(1).some((v) => v !== null));
    const series: QuerySeries[] = values.length
      ? [{ name: q.measurement, columns: ['time', ...cols], values }]
      : [];
    return { series };
  }

  async ping(): Promise<boolean> {
    return true;
  }

  info(): StorageInfo {
    return {
      kind: 'memory',
      ok: true,
      warning: this.warning,
      ...(this.warning !== null && this.warningCode ? { warningCode: this.warningCode } : {}),
    };
  }

  async close(): Promise<void> {}

  private expire(): void {
    const cutoff = this.now() - this.maxAgeMs;
    // Points arrive roughly in time order; forget expired ones at the old end.
    while (this.count > 0 && this.ring[this.head]!.ts < cutoff) this.evictHead();
  }
}

/** Measurement, tags (sorted) and time: what makes two points one in InfluxDB. */
function pointKey(p: MetricPoint): string {
  let k = `${p.rp ?? ''}\u0000${p.measurement}`;
  for (const t of Object.keys(p.tags).sort()) if (p.tags[t] !== '') k += `\u0000${t}=${p.tags[t]}`;
  return `${k}\u0000${p.ts}`;
}

function fieldValue(p: MetricPoint, field: string): number | string | undefined {
  return p.ints?.[field] ?? p.floats?.[field] ?? p.strings?.[field];
}

type Op = '>' | '>=' | '<' | '<=' | '=';
const compare = (a: number, op: Op, b: number): boolean =>
  op === '>' ? a > b : op === '>=' ? a >= b : op === '<' ? a < b : op === '<=' ? a <= b : a === b;

interface ParsedSelect {
  measurement: string;
  columns: string[] | '*';
  timeConds: Array<[Op, number]>;
  tagConds: Array<[string, string]>;
  limit: number | null;
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const IDENT = String.raw`(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*)`;

/** InfluxQL escapes inside quotes: `\\n` is a newline, `\\x` is x. */
const unescapeChar = (_m: string, c: string) => (c === 'n' ? '\n' : c);

function unquoteIdent(s: string): string {
  return s.startsWith('"') ? s.slice(1, -1).replace(/\\(.)/g, unescapeChar) : s;
}

function parseSelect(sql: string, now: number): ParsedSelect {
  const m = new RegExp(
    String.raw`^\s*SELECT\s+(\*|${IDENT}(?:\s*,\s*${IDENT})*)\s+FROM\s+(${IDENT})(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*;?\s*$`,
    'is',
  ).exec(sql);
  if (!m)
    throw new StoreQueryError(`the in-memory store does not support this query: ${sql.slice(0, 200)}`, 400);
  const columns =
    m[1] === '*' ? '*' : (m[1]!.match(new RegExp(IDENT, 'g')) ?? []).map((c) => unquoteIdent(c.trim()));
  const timeConds: Array<[Op, number]> = [];
  const tagConds: Array<[string, string]> = [];
  if (m[3]) {
    for (const cond of m[3].split(/\s+AND\s+/i)) {
      const t = /^\s*time\s*(>=|<=|>|<|=)\s*(.+?)\s*$/i.exec(cond);
      if (t) {
        timeConds.push([t[1] as Op, parseTime(t[2]!, now, sql)]);
        continue;
      }
      const g = new RegExp(String.raw`^\s*(${IDENT})\s*=\s*'((?:[^'\\]|\\.)*)'\s*$`).exec(cond);
      if (g) {
        tagConds.push([unquoteIdent(g[1]!), g[2]!.replace(/\\(.)/g, unescapeChar)]);
        continue;
      }
      throw new StoreQueryError(
        `the in-memory store does not support this condition: ${cond.slice(0, 200)}`,
        400,
      );
    }
  }
  return {
    measurement: unquoteIdent(m[2]!),
    columns,
    timeConds,
    tagConds,
    limit: m[4] ? Number(m[4]) : null,
  };
}

function parseTime(expr: string, now: number, sql: string): number {
  let m = /^(\d+)(ms|s|m|h|d|w|u|ns)?$/.exec(expr);
  if (m) {
    const n = Number(m[1]);
    const unit = m[2] ?? 'ns';
    return unit === 'ns' ? n / 1e6 : unit === 'u' ? n / 1e3 : n * UNIT_MS[unit]!;
  }
  m = /^now\(\)\s*(?:-\s*(\d+)(ms|s|m|h|d|w))?$/i.exec(expr);
  if (m) return now - (m[1] ? Number(m[1]) * UNIT_MS[m[2]!]! : 0);
  m = /^'([^']+)'$/.exec(expr);
  if (m && !Number.isNaN(Date.parse(m[1]!))) return Date.parse(m[1]!);
  throw new StoreQueryError(
    `the in-memory store cannot read this time: ${expr} in ${sql.slice(0, 200)}`,
    400,
  );
}
