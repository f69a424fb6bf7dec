/**
 * Rollups computed by the server from the samples it receives, so long-range queries never touch
 * raw points and work the same on InfluxDB 1.x, 2.x and 3.x (plain `/write`, plain InfluxQL).
 *
 * - Samples are aggregated per closed minute (by the agent's `ts`), per GPU, per project, per
 *   user within a project, and for the whole cluster. A minute is written `graceMs` after it ends.
 * - Hour rollups are built from the minute accumulators in memory and written when the hour ends
 *   (+ grace).
 * - **Late samples** (a minute already written: agent spool replay, a reconnect after an outage)
 *   are aggregated into a delta per minute and merged incrementally: into the in-memory hour
 *   accumulator when that hour is still open, and by read-modify-write into the stored 1m (and
 *   1h, when that hour was written) points — read back with InfluxQL, added to, written again
 *   (same series and time: the new point replaces the old). A merge waits until the points it
 *   reads were stored (`progress`: the emit path's done/total counts) and runs one at a time.
 *   Why not re-aggregate touched minutes from raw points with InfluxQL: attribution (memory-share
 *   split, idle-held windows) cannot be recomputed from raw points (process lists are stored on
 *   change only), and raw points may still sit in the write buffer or spool; figures in
 *   bench/rollup-late.ts and server/README.md.
 * - **After a restart** `rebuild()` reads the 1m tier of the current hour and the last
 *   `rebuildHours` hours: closed hours are written again from their minutes, the current hour's
 *   accumulator starts from them, and minutes already stored count as written (a replayed
 *   sample for them is merged, never overwrites them).
 * - Each sample stands for its agent's interval (`intervalMs`); the same sample seen twice (same
 *   node and `ts`, e.g. resent after an UNAVAILABLE ack) counts once, also when late, within
 *   `dedupeWindowMs` (10 min) after its minute was written.
 * - Merged means are weighted by what the stored point carries (`samples` for GPU metrics,
 *   GPU-seconds for utilization and temperature); sums (GPU-seconds, energy, memory·s) are exact.
 * - GPU-seconds in use: a process holds the GPU. Idle-held: held with utilization below the
 *   threshold for at least the idle window, judged on sample time; samples arriving out of order
 *   count as busy. Project and user values use each process's memory share of its GPU.
 */
import type { GpuMetrics, GpuProcess } from '@gpupulse/protocol';
import { processesByGpu } from '../accounting/mig.ts';
import { type Attribution, type ProcessShare, splitGpu } from '../fleet/attribution.ts';
import type { IngestedSample } from '../fleet/fleet-state.ts';
import { quoteIdent } from '../storage/influx-store.ts';
import { storedName } from '../storage/line-protocol.ts';
import type { MetricPoint, QueryResult } from '../storage/metric-store.ts';
import {
  gpuRollupPoint,
  ROLLUP_GPU_METRICS,
  ROLLUP_MEASUREMENTS,
  type RollupGpuMetric,
  type RollupKind,
  type RollupTier,
  type UsageRollupValues,
  usageRollupPoint,
} from '../storage/schema.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const N_METRICS = ROLLUP_GPU_METRICS.length;

export interface RollupAggregatorOptions {
  attribution: Attribution;
  /** Institution of a project (tag on project/user rollups); null for `unassigned` / unknown. */
  institutionOf: (project: string) => string | null;
  idleThresholdPercent?: number;
  idleWindowMs?: number;
  /** Default 30 s. */
  graceMs?: number;
  now: () => number;
  /** Receives the rollup points (e.g. the write buffer). */
  emit: (points: MetricPoint[]) => void;
  /** Retention policies of the tiers (InfluxDB 1.x); undefined: the default RP. */
  rp?: Partial<Record<RollupTier, string>>;
  /**
   * Reads stored rollups back (late merges, `rebuild()`). Absent: late samples are counted in
   * `stats.late` and left out of the rollups (they are still stored raw).
   */
  reader?: { query(influxql: string): Promise<QueryResult> };
  /** Database of the rollups (for `"db"."rp"."measurement"`). */
  database?: string;
  /**
   * Progress of the emit path: points stored or given up on (`done`) and points handed to it so
   * far (`total`). A late merge of a minute waits until the points emitted for it are done.
   * Absent: emitted points count as stored at once.
   */
  progress?: () => { done: number; total: number };
  /** Longest a merge waits for `progress` before it reads anyway (default 10 min). */
  mergeMaxWaitMs?: number;
  /** How long after a minute was written its sample times are kept to drop duplicates (default 10 min). */
  dedupeWindowMs?: number;
  /**
   * Most GPU-minutes of late deltas held for merging (default 100,000, some 50 MiB); a late
   * sample that would need more is counted in `stats.lateDropped` and left out of the rollups.
   */
  maxLateGpuMinutes?: number;
  /** Hours before the current one that `rebuild()` writes again from the 1m tier (default 3). */
  rebuildHours?: number;
  /** Errors of late merges and rebuilds (logged by the server). */
  onError?: (err: unknown, what: string) => void;
}

interface GpuAcc {
  host: string;
  uuid: string;
  index: number;
  name: string;
  samples: number;
  sum: number[];
  max: number[];
  n: number[];
  inUse: number;
  idle: number;
  energyWh: number;
  projects: Map<string, number>;
  /** The project tag a stored point of this GPU already has (kept when written again). */
  storedProject?: string | null;
}

interface UsageAcc {
  kind: 'project' | 'user' | 'cluster';
  project?: string;
  user?: string;
  inUse: number;
  idle: number;
  energyWh: number;
  /** Energy of the idle-held GPU-seconds (Wh). */
  idleEnergyWh: number;
  utilW: number;
  utilSum: number;
  /** MiB·s */
  memSum: number;
  /** cluster: GPU-seconds observed; temperature weighted sum. */
  seconds: number;
  tempW: number;
  tempSum: number;
}

interface Bucket {
  start: number;
  gpus: Map<string, GpuAcc>;
  usage: Map<string, UsageAcc>;
  /** Samples added (directly or merged in). */
  samples: number;
}

export interface RollupStats {
  samples: number;
  /** Samples for a minute already written (merged when a `reader` is given, else left out). */
  late: number;
  /** Late samples merged into stored rollups. */
  lateMerged: number;
  /** Late samples left out of the rollups (no reader, the late bound, a failed merge). */
  lateDropped: number;
  duplicate: number;
  future: number;
  minutesWritten: number;
  hoursWritten: number;
  /** Stored minutes (1m points) rewritten by late merges. */
  minutesMerged: number;
  /** Stored hours (1h points) rewritten by late merges or `rebuild()`. */
  hoursRewritten: number;
  /** `rebuild()` runs that read the 1m tier (one at start; again while it fails). */
  rebuilds: number;
}

const newUsage = (kind: UsageAcc['kind'], project?: string, user?: string): UsageAcc => ({
  kind,
  project,
  user,
  inUse: 0,
  idle: 0,
  energyWh: 0,
  idleEnergyWh: 0,
  utilW: 0,
  utilSum: 0,
  memSum: 0,
  seconds: 0,
  tempW: 0,
  tempSum: 0,
});

export class RollupAggregator {
  readonly stats: RollupStats = {
    samples: 0,
    late: 0,
    lateMerged: 0,
    lateDropped: 0,
    duplicate: 0,
    future: 0,
    minutesWritten: 0,
    hoursWritten: 0,
    minutesMerged: 0,
    hoursRewritten: 0,
    rebuilds: 0,
  };
  private readonly minutes = new Map<number, Bucket>();
  private readonly hours = new Map<number, Bucket>();
  /** Late samples per written minute, waiting to be merged. */
  private readonly late = new Map<number, Bucket>();
  /** GPU accumulators in `late` (the memory the late deltas hold). */
  private lateGpuMinutes = 0;
  /** minute start → node → sample times seen (dedupe), kept `dedupeWindowMs` after writing. */
  private readonly seen = new Map<number, Map<string, number[]>>();
  /** minute/hour start (tier-prefixed) → `progress().total` right after its points were emitted. */
  private readonly emittedAt = new Map<string, { mark: number; at: number }>();
  /** Hours written (their accumulators are gone): late minutes in them rewrite the 1h point. */
  private hoursWrittenThrough = Number.NEGATIVE_INFINITY;
  private merging: Promise<void> | null = null;
  private rebuilding = false;
  private rebuildRetry: { since: number; last: number } | null = null;
  /** End of the last minute written: samples before it are late. */
  private writtenThrough = Number.NEGATIVE_INFINITY;
  /** `node\0uuid` → { since, lastTs } on sample time. */
  private readonly idle = new Map<string, { since: number | null; lastTs: number }>();
  private readonly thr: number;
  private readonly window: number;
  private readonly grace: number;
  private lastSweep = 0;

  constructor(private readonly opts: RollupAggregatorOptions) {
    this.thr = opts.idleThresholdPercent ?? 5;
    this.window = opts.idleWindowMs ?? 10 * 60_000;
    this.grace = opts.graceMs ?? 30_000;
  }

  /** Takes one node's samples (as FleetState hands them over). */
  ingest(node: string, samples: readonly IngestedSample[], intervalMs: number): void {
    const dt = intervalMs / 1000;
    const now = this.opts.now();
    for (const { sample, processes } of samples) {
      const ts = sample.ts;
      if (ts > now + 10 * MINUTE) {
        this.stats.future++;
        continue;
      }
      const start = Math.floor(ts / MINUTE) * MINUTE;
      if (this.isDuplicate(start, node, ts)) {
        this.stats.duplicate++;
        continue;
      }
      this.stats.samples++;
      if (start < this.writtenThrough) {
        this.stats.late++;
        if (!this.opts.reader || this.lateGpuMinutes >= (this.opts.maxLateGpuMinutes ?? 100_000)) {
          this.stats.lateDropped++;
          continue;
        }
        const b = this.bucket(this.late, start);
        const before = b.gpus.size;
        this.addSample(b, node, sample.gpus, processes, ts, dt);
        this.lateGpuMinutes += b.gpus.size - before;
        continue;
      }
      this.addSample(this.bucket(this.minutes, start), node, sample.gpus, processes, ts, dt);
    }
  }

  /** Writes every minute (and hour) that has closed by `now` + grace; `all`: everything (shutdown). */
  flush(now = this.opts.now(), all = false): void {
    // While `rebuild()` reads the stored minutes nothing is written (it would be read twice).
    if (this.rebuilding && !all) return;
    const retry = this.rebuildRetry;
    if (retry && now - retry.last >= 30_000 && now - retry.since < 10 * MINUTE) {
      retry.last = now;
      void this.rebuild(now).catch((err: unknown) => this.opts.onError?.(err, 'rebuilding the hour tier'));
      return;
    }
    const points: MetricPoint[] = [];
    const starts = [...this.minutes.keys()].sort((a, b) => a - b);
    const emitted: string[] = [];
    for (const start of starts) {
      if (!all && start + MINUTE + this.grace > now) break;
      const b = this.minutes.get(start)!;
      this.minutes.delete(start);
      this.writtenThrough = Math.max(this.writtenThrough, start + MINUTE);
      points.push(...this.points(b, '1m', MINUTE));
      emitted.push(`1m:${start}`);
      this.stats.minutesWritten++;
      this.merge(this.bucket(this.hours, Math.floor(start / HOUR) * HOUR), b);
    }
    for (const start of [...this.hours.keys()].sort((a, b) => a - b)) {
      if (!all && start + HOUR + this.grace > now) break;
      const b = this.hours.get(start)!;
      this.hours.delete(start);
      this.hoursWrittenThrough = Math.max(this.hoursWrittenThrough, start + HOUR);
      points.push(...this.points(b, '1h', HOUR));
      emitted.push(`1h:${start}`);
      this.stats.hoursWritten++;
    }
    // Idle trackers of GPUs silent for a day are forgotten (bounded memory).
    if (now - this.lastSweep > HOUR) {
      this.lastSweep = now;
      for (const [k, v] of this.idle) if (now - v.lastTs > 24 * HOUR) this.idle.delete(k);
      for (const [k, v] of this.emittedAt) if (now - v.at > 24 * HOUR) this.emittedAt.delete(k);
    }
    const dedupeWindow = this.opts.dedupeWindowMs ?? 10 * MINUTE;
    for (const start of this.seen.keys()) {
      if (start + MINUTE <= this.writtenThrough - dedupeWindow) this.seen.delete(start);
    }
    if (points.length > 0) this.emitPoints(points, emitted);
    if (this.late.size > 0 && !this.merging) {
      this.merging = this.mergeLate(now, all).finally(() => {
        this.merging = null;
      });
    }
  }

  /** Resolves when the late merge in progress (if any) is done. */
  async settle(): Promise<void> {
    while (this.merging) await this.merging;
  }

  private emitPoints(points: MetricPoint[], keys: readonly string[]): void {
    this.opts.emit(points);
    const mark = this.opts.progress?.().total ?? 0;
    const at = this.opts.now();
    for (const k of keys) this.emittedAt.set(k, { mark, at });
  }

  /** True when the points emitted for `key` are stored (or waited for long enough). */
  private stored(key: string, now: number): boolean {
    const e = this.emittedAt.get(key);
    if (!e || !this.opts.progress) return true;
    if (this.opts.progress().done >= e.mark) return true;
    return now - e.at > (this.opts.mergeMaxWaitMs ?? 10 * MINUTE);
  }

  private isDuplicate(start: number, node: string, ts: number): boolean {
    let byNode = this.seen.get(start);
    if (!byNode) {
      // Only minutes still open or written within the dedupe window are tracked.
      if (start < this.writtenThrough - (this.opts.dedupeWindowMs ?? 10 * MINUTE)) return false;
      byNode = new Map();
      this.seen.set(start, byNode);
    }
    const list = byNode.get(node);
    if (!list) {
      byNode.set(node, [ts]);
      return false;
    }
    if (list.includes(ts)) return true;
    list.push(ts);
    return false;
  }

  /**
   * Merges the late deltas whose stored points are in place: the hour accumulator when the hour
   * is open, else the stored 1h points; always the stored 1m points. One minute at a time.
   */
  private async mergeLate(now: number, all: boolean): Promise<void> {
    const reader = this.opts.reader;
    if (!reader) return;
    for (const start of [...this.late.keys()].sort((a, b) => a - b)) {
      const hour = Math.floor(start / HOUR) * HOUR;
      const open = this.hours.get(hour);
      const hourStored = !open && hour < this.hoursWrittenThrough;
      const ready = this.stored(`1m:${start}`, now) && (!hourStored || this.stored(`1h:${hour}`, now));
      if (!ready && !all) continue;
      const delta = this.late.get(start)!;
      this.late.delete(start);
      const n = delta.samples;
      this.lateGpuMinutes -= delta.gpus.size;
      // The hour first, before anything is awaited: into its open accumulator when there is one.
      if (!hourStored) this.merge(open ?? this.bucket(this.hours, hour), delta);
      try {
        const points: MetricPoint[] = [];
        const keys = [`1m:${start}`];
        const minute = await this.readBucket('1m', start);
        this.merge(minute, delta);
        points.push(...this.points(minute, '1m', MINUTE));
        this.stats.minutesMerged++;
        if (hourStored) {
          const h = await this.readBucket('1h', hour);
          this.merge(h, delta);
          points.push(...this.points(h, '1h', HOUR));
          keys.push(`1h:${hour}`);
          this.stats.hoursRewritten++;
        }
        this.emitPoints(points, keys);
        this.stats.lateMerged += n;
      } catch (err) {
        this.stats.lateDropped += n;
        this.opts.onError?.(err, `merging late samples into the rollups of ${new Date(start).toISOString()}`);
      }
    }
  }

  /**
   * After a restart: the 1m tier of the current hour and the `rebuildHours` before it is read;
   * closed hours are written again from their minutes, the current hour's accumulator starts from
   * its stored minutes, and stored minutes count as written (late samples for them are merged).
   */
  async rebuild(now = this.opts.now()): Promise<{ hours: number; minutes: number }> {
    if (!this.opts.reader) return { hours: 0, minutes: 0 };
    const current = Math.floor(now / HOUR) * HOUR;
    const first = Math.max(0, current - (this.opts.rebuildHours ?? 3) * HOUR);
    this.rebuilding = true;
    let byMinute: Map<number, Bucket>;
    let storedHours: Map<number, Bucket>;
    try {
      byMinute = await this.readBuckets('1m', first, current + HOUR);
      // The project tags hours were stored with (a point written again keeps its series).
      storedHours = await this.readBuckets('1h', first, current);
    } catch (err) {
      // Tried again from flush() every 30 s for 10 minutes (InfluxDB may be starting too).
      this.rebuildRetry ??= { since: now, last: now };
      throw err;
    } finally {
      this.rebuilding = false;
    }
    this.rebuildRetry = null;
    this.stats.rebuilds++;
    const hours = new Map<number, Bucket>();
    let lastMinute = Number.NEGATIVE_INFINITY;
    for (const [start, b] of [...byMinute].sort((x, y) => x[0] - y[0])) {
      lastMinute = Math.max(lastMinute, start);
      // Minutes this process wrote are in its hour accumulators already (a retried rebuild).
      if (this.emittedAt.has(`1m:${start}`)) continue;
      const hour = Math.floor(start / HOUR) * HOUR;
      let h = hours.get(hour);
      if (!h) {
        h = { start: hour, gpus: new Map(), usage: new Map(), samples: 0 };
        hours.set(hour, h);
      }
      this.merge(h, b);
    }
    const points: MetricPoint[] = [];
    const keys: string[] = [];
    for (const [hour, h] of hours) {
      if (this.emittedAt.has(`1h:${hour}`)) continue;
      if (hour + HOUR + this.grace <= now) {
        // A closed hour: written again from its minutes (the 1h point may be missing or partial).
        const stored = storedHours.get(hour);
        for (const [k, g] of h.gpus) {
          const sg = stored?.gpus.get(k);
          if (sg) g.storedProject = sg.storedProject;
          else delete g.storedProject;
        }
        points.push(...this.points(h, '1h', HOUR));
        keys.push(`1h:${hour}`);
        this.stats.hoursRewritten++;
        this.hoursWrittenThrough = Math.max(this.hoursWrittenThrough, hour + HOUR);
      } else {
        const open = this.bucket(this.hours, hour);
        for (const g of h.gpus.values()) delete g.storedProject;
        this.merge(open, h);
      }
    }
    if (lastMinute + MINUTE > this.writtenThrough) this.writtenThrough = lastMinute + MINUTE;
    // Minutes that were open in memory and are now below writtenThrough are late from now on.
    for (const [start, b] of this.minutes) {
      if (start < this.writtenThrough) {
        this.minutes.delete(start);
        const late = this.late.get(start);
        if (late) {
          this.lateGpuMinutes -= late.gpus.size;
          this.merge(late, b);
          this.lateGpuMinutes += late.gpus.size;
        } else {
          this.late.set(start, b);
          this.lateGpuMinutes += b.gpus.size;
        }
      }
    }
    if (points.length) this.emitPoints(points, keys);
    return { hours: hours.size, minutes: byMinute.size };
  }

  private from(tier: RollupTier, kind: RollupKind): string {
    const m = quoteIdent(ROLLUP_MEASUREMENTS[kind][tier]);
    const rp = this.opts.rp?.[tier];
    return rp && this.opts.database ? `${quoteIdent(this.opts.database)}.${quoteIdent(rp)}.${m}` : m;
  }

  private async readBucket(tier: RollupTier, start: number): Promise<Bucket> {
    const span = tier === '1m' ? MINUTE : HOUR;
    return (
      (await this.readBuckets(tier, start, start + span)).get(start) ?? {
        start,
        gpus: new Map(),
        usage: new Map(),
        samples: 0,
      }
    );
  }

  /** Stored rollup points of one tier in [from, to), as accumulators per window start. */
  private async readBuckets(tier: RollupTier, from: number, to: number): Promise<Map<number, Bucket>> {
    const reader = this.opts.reader!;
    const win = (tier === '1m' ? MINUTE : HOUR) / 1000;
    const out = new Map<number, Bucket>();
    const bucketAt = (t: number) => {
      let b = out.get(t);
      if (!b) {
        b = { start: t, gpus: new Map(), usage: new Map(), samples: 0 };
        out.set(t, b);
      }
      return b;
    };
    for (const kind of ['gpu', 'project', 'user', 'cluster'] as const) {
      const res = await reader.query(
        `SELECT * FROM ${this.from(tier, kind)} WHERE time >= ${from}ms AND time < ${to}ms`,
      );
      for (const series of res.series) {
        const cols = series.columns;
        for (const values of series.values) {
          const row: Record<string, unknown> = {};
          cols.forEach((c, i) => {
            row[c] = values[i];
          });
          const b = bucketAt(Number(row.time));
          if (kind === 'gpu') {
            const g = gpuAccFromRow(row);
            b.gpus.set(gpuKey(g.host, g.uuid), g);
          } else {
            const u = usageAccFromRow(kind, row, win);
            b.usage.set(usageKey(kind, u.project, u.user), u);
          }
        }
      }
    }
    return out;
  }

  /** Open minute buckets (tests, metrics). */
  get openMinutes(): number {
    return this.minutes.size;
  }

  private bucket(map: Map<number, Bucket>, start: number): Bucket {
    let b = map.get(start);
    if (!b) {
      b = { start, gpus: new Map(), usage: new Map(), samples: 0 };
      map.set(start, b);
    }
    return b;
  }

  private usageAcc(b: Bucket, kind: UsageAcc['kind'], project?: string, user?: string): UsageAcc {
    const key = usageKey(kind, project, user);
    let u = b.usage.get(key);
    if (!u) {
      u = newUsage(kind, project, user);
      b.usage.set(key, u);
    }
    return u;
  }

  private addSample(
    b: Bucket,
    node: string,
    gpus: readonly GpuMetrics[],
    processes: readonly GpuProcess[],
    ts: number,
    dt: number,
  ): void {
    // A process on a MIG device's uuid counts on its physical GPU (accounting/mig.ts).
    const byGpu = processesByGpu(gpus, processes);
    b.samples++;
    const cluster = this.usageAcc(b, 'cluster');
    for (const gpu of gpus) {
      const procs = byGpu.get(gpu.uuid);
      const shares: ProcessShare[] = procs ? splitGpu(this.opts.attribution, node, gpu, procs) : [];
      const held = shares.length > 0;
      // GPU fraction held: 1 on a whole GPU, the held MIG instances' slices in MIG mode.
      const heldWeight = shares.reduce((sum, s) => sum + s.weight, 0);
      const util = gpu.utilizationGpuPercent;
      const power = gpu.powerDrawWatts;
      const mem = gpu.memoryUsedMiB;
      const idleHeld = this.idleHeld(
        `${node}\u0000${gpu.uuid}`,
        ts,
        held && util !== null && util < this.thr,
      );
      const energyWh = power !== null ? (power * dt) / 3600 : 0;

      const gk = gpuKey(node, gpu.uuid);
      let g = b.gpus.get(gk);
      if (!g) {
        g = {
          host: node,
          uuid: gpu.uuid,
          index: gpu.index,
          name: gpu.name,
          samples: 0,
          sum: new Array(N_METRICS).fill(0),
          max: new Array(N_METRICS).fill(Number.NEGATIVE_INFINITY),
          n: new Array(N_METRICS).fill(0),
          inUse: 0,
          idle: 0,
          energyWh: 0,
          projects: new Map(),
        };
        b.gpus.set(gk, g);
      }
      g.samples++;
      for (let i = 0; i < N_METRICS; i++) {
        const v = gpu[ROLLUP_GPU_METRICS[i]![0]];
        if (typeof v === 'number' && Number.isFinite(v)) {
          g.sum[i]! += v;
          if (v > g.max[i]!) g.max[i] = v;
          g.n[i]!++;
        }
      }
      g.energyWh += energyWh;
      if (held) g.inUse += heldWeight * dt;
      if (idleHeld) g.idle += heldWeight * dt;

      cluster.seconds += dt;
      cluster.energyWh += energyWh;
      if (held) cluster.inUse += heldWeight * dt;
      if (idleHeld) {
        cluster.idle += heldWeight * dt;
        cluster.idleEnergyWh += heldWeight * energyWh;
      }
      if (util !== null) {
        cluster.utilW += dt;
        cluster.utilSum += util * dt;
      }
      if (mem !== null) cluster.memSum += mem * dt;
      if (gpu.temperatureCelsius !== null) {
        cluster.tempW += dt;
        cluster.tempSum += gpu.temperatureCelsius * dt;
      }

      for (const s of shares) {
        const w = s.weight * dt;
        g.projects.set(s.project, (g.projects.get(s.project) ?? 0) + w);
        for (const u of [
          this.usageAcc(b, 'project', s.project),
          this.usageAcc(b, 'user', s.project, s.user ?? 'unknown'),
        ]) {
          u.inUse += w;
          if (idleHeld) u.idle += w;
          u.energyWh += s.weight * energyWh;
          if (idleHeld) u.idleEnergyWh += s.weight * energyWh;
          if (util !== null) {
            u.utilW += w;
            u.utilSum += util * w;
          }
          if (mem !== null) u.memSum += mem * w;
        }
      }
    }
  }

  /** Idle-held on sample time; out-of-order samples count as not idle. */
  private idleHeld(key: string, ts: number, low: boolean): boolean {
    const st = this.idle.get(key);
    if (!st) {
      this.idle.set(key, { since: low ? ts : null, lastTs: ts });
      return low && this.window <= 0;
    }
    if (ts < st.lastTs) return false;
    st.lastTs = ts;
    if (!low) {
      st.since = null;
      return false;
    }
    st.since ??= ts;
    return ts - st.since >= this.window;
  }

  private merge(into: Bucket, from: Bucket): void {
    into.samples += from.samples;
    for (const [k, g] of from.gpus) {
      const h = into.gpus.get(k);
      if (!h) {
        into.gpus.set(k, {
          ...g,
          sum: [...g.sum],
          max: [...g.max],
          n: [...g.n],
          projects: new Map(g.projects),
        });
        continue;
      }
      h.storedProject ??= g.storedProject;
      h.samples += g.samples;
      for (let i = 0; i < N_METRICS; i++) {
        h.sum[i]! += g.sum[i]!;
        h.n[i]! += g.n[i]!;
        h.max[i] = Math.max(h.max[i]!, g.max[i]!);
      }
      h.inUse += g.inUse;
      h.idle += g.idle;
      h.energyWh += g.energyWh;
      for (const [p, w] of g.projects) h.projects.set(p, (h.projects.get(p) ?? 0) + w);
    }
    for (const [k, u] of from.usage) {
      const h = into.usage.get(k);
      if (!h) {
        into.usage.set(k, { ...u });
        continue;
      }
      h.inUse += u.inUse;
      h.idle += u.idle;
      h.energyWh += u.energyWh;
      h.idleEnergyWh += u.idleEnergyWh;
      h.utilW += u.utilW;
      h.utilSum += u.utilSum;
      h.memSum += u.memSum;
      h.seconds += u.seconds;
      h.tempW += u.tempW;
      h.tempSum += u.tempSum;
    }
  }

  private points(b: Bucket, tier: RollupTier, windowMs: number): MetricPoint[] {
    const out: MetricPoint[] = [];
    const rp = this.opts.rp?.[tier];
    const win = windowMs / 1000;
    for (const g of b.gpus.values()) {
      const metrics: Partial<Record<RollupGpuMetric, { mean: number; max: number }>> = {};
      ROLLUP_GPU_METRICS.forEach(([key], i) => {
        if (g.n[i]! > 0) metrics[key] = { mean: g.sum[i]! / g.n[i]!, max: g.max[i]! };
      });
      let project: string | null = null;
      let best = -1;
      for (const [p, w] of g.projects) if (w > best) [project, best] = [p, w];
      // A point written again keeps its series: the project tag it was stored with.
      if (g.storedProject !== undefined) project = g.storedProject;
      const p = gpuRollupPoint(tier, b.start, {
        host: g.host,
        uuid: g.uuid,
        index: g.index,
        name: g.name,
        project,
        samples: g.samples,
        metrics,
        gpuSecondsInUse: g.inUse,
        gpuSecondsIdleHeld: g.idle,
        energyWh: g.energyWh,
      });
      if (rp) p.rp = rp;
      out.push(p);
    }
    for (const u of b.usage.values()) {
      const v: UsageRollupValues = {
        kind: u.kind,
        gpuSecondsInUse: u.inUse,
        gpuSecondsIdleHeld: u.idle,
        energyWh: u.energyWh,
        energyWhIdleHeld: u.idleEnergyWh,
        utilizationMean: u.utilW > 0 ? u.utilSum / u.utilW : null,
        gpusInUseMean: u.inUse / win,
        gpusIdleHeldMean: u.idle / win,
        memoryUsedMean: u.memSum / win,
        powerDrawMean: (u.energyWh * 3600) / win,
      };
      if (u.kind !== 'cluster') {
        v.project = u.project;
        v.institution = this.opts.institutionOf(u.project!);
      }
      if (u.kind === 'user') v.user = u.user;
      if (u.kind === 'cluster') {
        v.temperatureMean = u.tempW > 0 ? u.tempSum / u.tempW : null;
        v.gpusMean = u.seconds / win;
      }
      const p = usageRollupPoint(tier, b.start, v);
      if (rp) p.rp = rp;
      out.push(p);
    }
    return out;
  }
}

/** Map keys compare names as storage keeps them (line protocol replaces a few characters). */
function gpuKey(host: string, uuid: string): string {
  return `${storedName(host)}\u0000${storedName(uuid)}`;
}

function usageKey(kind: UsageAcc['kind'], project?: string, user?: string): string {
  return kind === 'cluster'
    ? 'c'
    : kind === 'project'
      ? `p\u0000${storedName(project ?? '')}`
      : `u\u0000${storedName(project ?? '')}\u0000${storedName(user ?? '')}`;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** A stored GPU rollup row back as an accumulator (means weighted by `samples`). */
function gpuAccFromRow(row: Record<string, unknown>): GpuAcc {
  const samples = num(row.samples) ?? 0;
  const g: GpuAcc = {
    host: str(row.host) ?? '',
    uuid: str(row.uuid) ?? '',
    index: Number(row.index ?? 0),
    name: str(row.name) ?? '',
    samples,
    sum: new Array(N_METRICS).fill(0),
    max: new Array(N_METRICS).fill(Number.NEGATIVE_INFINITY),
    n: new Array(N_METRICS).fill(0),
    inUse: num(row.gpu_seconds_in_use) ?? 0,
    idle: num(row.gpu_seconds_idle_held) ?? 0,
    energyWh: num(row.energy_wh) ?? 0,
    projects: new Map(),
    storedProject: str(row.project) ?? null,
  };
  ROLLUP_GPU_METRICS.forEach(([, field], i) => {
    const mean = num(row[`${field}_mean`]);
    const max = num(row[`${field}_max`]);
    if (mean !== null && samples > 0) {
      g.sum[i] = mean * samples;
      g.n[i] = samples;
      g.max[i] = max ?? mean;
    }
  });
  if (g.storedProject) g.projects.set(g.storedProject, g.inUse);
  return g;
}

/** A stored usage rollup row back as an accumulator (sums exact; means weighted by GPU-seconds). */
function usageAccFromRow(
  kind: Exclude<RollupKind, 'gpu'>,
  row: Record<string, unknown>,
  win: number,
): UsageAcc {
  const u = newUsage(kind, str(row.project), kind === 'user' ? (str(row.user) ?? 'unknown') : undefined);
  u.inUse = num(row.gpu_seconds_in_use) ?? 0;
  u.idle = num(row.gpu_seconds_idle_held) ?? 0;
  u.energyWh = num(row.energy_wh) ?? 0;
  u.idleEnergyWh = num(row.energy_wh_idle_held) ?? 0;
  u.memSum = (num(row.memory_used_mean) ?? 0) * win;
  if (kind === 'cluster') u.seconds = (num(row.gpus_mean) ?? 0) * win;
  const weight = kind === 'cluster' ? u.seconds : u.inUse;
  const util = num(row.utilization_mean);
  if (util !== null) {
    u.utilW = weight;
    u.utilSum = util * weight;
  }
  const temp = num(row.temperature_mean);
  if (temp !== null) {
    u.tempW = u.seconds;
    u.tempSum = temp * u.seconds;
  }
  return u;
}
