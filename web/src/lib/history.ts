/**
 * History for the detail charts: the range picker's ranges, the `/api/v1/history` request,
 * the response parsed into series, and a bounded ring buffer that continues history with
 * live values (no gap, no duplicate, never more than `capacity` points).
 */
import {
  GPU_HISTORY_METRICS,
  type GpuHistoryMetricKey,
  type GpuView,
  type HistoryResponse,
  type HistoryScope,
  type HistoryTier,
} from '@gpupulse/protocol';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export const HISTORY_RANGES = [
  { id: '15m', ms: 15 * MIN },
  { id: '1h', ms: HOUR },
  { id: '6h', ms: 6 * HOUR },
  { id: '24h', ms: DAY },
  { id: '7d', ms: 7 * DAY },
  { id: '30d', ms: 30 * DAY },
] as const;
export type RangeId = (typeof HISTORY_RANGES)[number]['id'];
export const DEFAULT_RANGE: RangeId = '1h';

export function isRangeId(value: unknown): value is RangeId {
  return HISTORY_RANGES.some((r) => r.id === value);
}

export function rangeMs(id: RangeId): number {
  return HISTORY_RANGES.find((r) => r.id === id)?.ms ?? HOUR;
}

/** The tier the server picks for a range (raw ≤ 6 h, 1-minute ≤ 14 d, 1-hour beyond). */
export function expectedTier(ms: number): HistoryTier {
  if (ms <= 6 * HOUR) return 'raw';
  if (ms <= 14 * DAY) return '1m';
  return '1h';
}

const NICE_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
].map((s) => s * 1000);

/** A round step (ms) that keeps a range under `maxPoints` points, never finer than the tier. */
export function stepForRange(ms: number, maxPoints = 720): number {
  const tier = expectedTier(ms);
  const floor = tier === 'raw' ? 1000 : tier === '1m' ? MIN : HOUR;
  const wanted = Math.max(floor, ms / maxPoints);
  return NICE_STEPS.find((s) => s >= wanted) ?? DAY;
}

export interface HistoryQuery {
  scope: HistoryScope;
  /** GPU uuid, node name, project id; null for the cluster. */
  id: string | null;
  metrics: readonly string[];
  from: number;
  to: number;
  stepMs?: number;
}

/** `/api/v1/history?scope=…&id=…&metrics=a,b&from=…&to=…&step=…` (every value URL-encoded). */
export function historyUrl(q: HistoryQuery): string {
  const p = new URLSearchParams();
  p.set('scope', q.scope);
  if (q.id !== null) p.set('id', q.id);
  p.set('metrics', q.metrics.map(apiMetric).join(','));
  p.set('from', String(Math.floor(q.from)));
  p.set('to', String(Math.floor(q.to)));
  if (q.stepMs !== undefined) p.set('step', String(Math.round(q.stepMs)));
  return `/api/v1/history?${p.toString()}`;
}

/**
 * The metrics the detail charts draw: protocol key, the history API's metric name, and the
 * InfluxDB (Telegraf) field name (series come back under the API name; the others are accepted).
 * From the protocol's metric registry (its metrics with history).
 */
export const GPU_CHART_METRICS: ReadonlyArray<readonly [GpuHistoryMetricKey, string, string]> =
  GPU_HISTORY_METRICS.map((m) => [m.key, m.history, m.field] as const);
export type GpuChartMetric = GpuHistoryMetricKey;
export const GPU_METRIC_KEYS: readonly GpuChartMetric[] = GPU_CHART_METRICS.map(([k]) => k);

/** The history API's name for a metric (`utilizationGpuPercent` → `utilization`); others pass through. */
export function apiMetric(metric: string): string {
  return GPU_CHART_METRICS.find(([k]) => k === metric)?.[1] ?? metric;
}

/** Accepts a series' metric as the API name, the protocol key or the InfluxDB field name. */
export function normalizeMetric(metric: string): string {
  const hit = GPU_CHART_METRICS.find(([k, a, f]) => metric === k || metric === a || metric === f);
  return hit ? hit[0] : metric;
}

export type Point = readonly [time: number, value: number | null];

/** `metric|key` → points, sorted by time (the response may not be). */
export function parseHistory(res: HistoryResponse): Map<string, Point[]> {
  const out = new Map<string, Point[]>();
  for (const s of res.series) {
    const id = seriesId(normalizeMetric(s.metric), s.key ?? '');
    const pts = [...(out.get(id) ?? []), ...s.points.filter(([t]) => Number.isFinite(t))];
    pts.sort((a, b) => a[0] - b[0]);
    out.set(id, pts);
  }
  return out;
}

export function seriesId(metric: string, key: string): string {
  return `${metric}|${key}`;
}

/**
 * Points of a node-scope response for one GPU: the server keys node series by GPU uuid;
 * an index key (`"3"`) is accepted too.
 */
export function pointsForGpu(
  parsed: Map<string, Point[]>,
  metric: string,
  gpu: Pick<GpuView, 'uuid' | 'index'>,
) {
  return (
    parsed.get(seriesId(metric, gpu.uuid)) ??
    parsed.get(seriesId(metric, String(gpu.index))) ??
    (parsed.size > 0 && [...parsed.keys()].every((k) => k.endsWith('|'))
      ? parsed.get(seriesId(metric, ''))
      : undefined)
  );
}

/** Fixed-capacity circular buffer of points: pushing beyond capacity drops the oldest. */
export class PointRing {
  readonly capacity: number;
  private readonly times: Float64Array;
  private readonly values: Float64Array;
  private start = 0;
  private size = 0;
  /** Points dropped because the buffer was full. */
  dropped = 0;

  constructor(capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be ≥ 1');
    this.capacity = Math.floor(capacity);
    this.times = new Float64Array(this.capacity);
    this.values = new Float64Array(this.capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Time of the newest point, or -Infinity when empty. */
  get lastTime(): number {
    return this.size === 0 ? Number.NEGATIVE_INFINITY : (this.times[this.slot(this.size - 1)] ?? 0);
  }

  private slot(i: number): number {
    return (this.start + i) % this.capacity;
  }

  push(time: number, value: number | null): void {
    if (this.size === this.capacity) {
      this.start = (this.start + 1) % this.capacity;
      this.size--;
      this.dropped++;
    }
    const s = this.slot(this.size);
    this.times[s] = time;
    this.values[s] = value === null ? Number.NaN : value;
    this.size++;
  }

  /** Replaces the newest point's value. */
  setLast(value: number | null): void {
    if (this.size === 0) return;
    this.values[this.slot(this.size - 1)] = value === null ? Number.NaN : value;
  }

  lastValue(): number | null {
    if (this.size === 0) return null;
    const v = this.values[this.slot(this.size - 1)] ?? Number.NaN;
    return Number.isNaN(v) ? null : v;
  }

  clear(): void {
    this.start = 0;
    this.size = 0;
  }

  toArray(): Point[] {
    const out: Point[] = new Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const s = this.slot(i);
      const v = this.values[s] ?? Number.NaN;
      out[i] = [this.times[s] ?? 0, Number.isNaN(v) ? null : v];
    }
    return out;
  }
}

/**
 * One chart line: history from the API, continued by live values. Live values are bucketed to
 * the chart's step (a running mean per bucket, like the server's rollups), appended only after
 * the newest point (no duplicates), and a history reload keeps the live points newer than it
 * (no gap while the request was in flight). Bounded by the ring's capacity.
 */
export class LiveSeries {
  private ring: PointRing;
  private stepMs: number;
  /** Time of the newest history point; points after it are live. */
  historyEnd = Number.NEGATIVE_INFINITY;
  private bucketCount = 0;

  constructor(options: { capacity: number; stepMs: number }) {
    this.ring = new PointRing(options.capacity);
    this.stepMs = Math.max(1, options.stepMs);
  }

  get length(): number {
    return this.ring.length;
  }

  get dropped(): number {
    return this.ring.dropped;
  }

  /** Replaces the history part; live points newer than the history's last point stay. */
  setHistory(points: readonly Point[], stepMs = this.stepMs): void {
    const live = this.ring.toArray().filter(([t]) => t > this.historyEnd);
    const lastBucketCount = this.bucketCount;
    this.stepMs = Math.max(1, stepMs);
    this.ring.clear();
    let last = Number.NEGATIVE_INFINITY;
    for (const [t, v] of points) {
      if (t <= last) continue; // unsorted or duplicate input: keep the first
      this.ring.push(t, v);
      last = t;
    }
    this.historyEnd = last;
    this.bucketCount = 0;
    for (const [t, v] of live) {
      if (t > last) {
        this.ring.push(t, v);
        last = t;
        this.bucketCount = lastBucketCount;
      }
    }
  }

  /**
   * Adds a live value at `time`; returns false when it falls at or before the history end
   * or before the newest live bucket (duplicates from repeated deltas are ignored).
   */
  appendLive(time: number, value: number | null): boolean {
    const bucket = Math.floor(time / this.stepMs) * this.stepMs;
    const last = this.ring.lastTime;
    if (bucket <= this.historyEnd) return false;
    if (bucket < last) return false;
    if (bucket === last) {
      // Same bucket as the newest live point: running mean.
      const prev = this.ring.lastValue();
      if (value === null) return false;
      if (prev === null) {
        this.ring.setLast(value);
        this.bucketCount = 1;
      } else {
        this.bucketCount++;
        this.ring.setLast(prev + (value - prev) / this.bucketCount);
      }
      return true;
    }
    this.ring.push(bucket, value);
    this.bucketCount = value === null ? 0 : 1;
    return true;
  }

  points(): Point[] {
    return this.ring.toArray();
  }
}

/** Room for a full range at its step plus an hour of live points at that step (≥ 1,000). */
export function capacityFor(ms: number, stepMs: number): number {
  return Math.max(1000, Math.ceil(ms / stepMs) + Math.ceil(HOUR / stepMs) + 2);
}
