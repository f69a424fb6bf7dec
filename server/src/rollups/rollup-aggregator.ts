/**
 * Rollups computed by the server from the samples it receives, so long-range queries never touch
 * raw points and work the same on InfluxDB 1.x, 2.x and 3.x (plain `/write`, plain InfluxQL).
 *
 * - Samples are aggregated per closed minute (by the agent's `ts`), per GPU, per project, per
 *   user within a project, and for the whole cluster. A minute is written `graceMs` after it ends
 *   (late samples until then still count); a sample for a minute already written is counted in
 *   `stats.late` and left out of the rollups (it is still stored raw).
 * - Hour rollups are built from the minute accumulators in memory and written when the hour ends
 *   (+ grace). A restart loses the partial hour (and minute) in progress: `close()` writes them
 *   as they are.
 * - Each sample stands for its agent's interval (`intervalMs`); the same sample seen twice (same
 *   node and `ts`, e.g. resent after an UNAVAILABLE ack) counts once.
 * - GPU-seconds in use: a process holds the GPU. Idle-held: held with utilization below the
 *   threshold for at least the idle window, judged on sample time; samples arriving out of order
 *   count as busy. Project and user values use each process's memory share of its GPU.
 */
import type { GpuMetrics, GpuProcess } from '@gpupulse/protocol';
import { type Attribution, type ProcessShare, splitGpu } from '../fleet/attribution.ts';
import type { IngestedSample } from '../fleet/fleet-state.ts';
import type { MetricPoint } from '../storage/metric-store.ts';
import {
  gpuRollupPoint,
  ROLLUP_GPU_METRICS,
  type RollupGpuMetric,
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
}

interface UsageAcc {
  kind: 'project' | 'user' | 'cluster';
  project?: string;
  user?: string;
  inUse: number;
  idle: number;
  energyWh: number;
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
  /** node → sample timestamps seen (dedupe). */
  seen: Map<string, number[]>;
}

export interface RollupStats {
  samples: number;
  late: number;
  duplicate: number;
  future: number;
  minutesWritten: number;
  hoursWritten: number;
}

const newUsage = (kind: UsageAcc['kind'], project?: string, user?: string): UsageAcc => ({
  kind,
  project,
  user,
  inUse: 0,
  idle: 0,
  energyWh: 0,
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
    duplicate: 0,
    future: 0,
    minutesWritten: 0,
    hoursWritten: 0,
  };
  private readonly minutes = new Map<number, Bucket>();
  private readonly hours = new Map<number, Bucket>();
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
      if (start < this.writtenThrough) {
        this.stats.late++;
        continue;
      }
      const b = this.bucket(this.minutes, start);
      const seen = b.seen.get(node);
      if (seen) {
        if (ts <= seen[seen.length - 1]! && seen.includes(ts)) {
          this.stats.duplicate++;
          continue;
        }
        seen.push(ts);
      } else b.seen.set(node, [ts]);
      this.stats.samples++;
      this.addSample(b, node, sample.gpus, processes, ts, dt);
    }
  }

  /** Writes every minute (and hour) that has closed by `now` + grace; `all`: everything (shutdown). */
  flush(now = this.opts.now(), all = false): void {
    const points: MetricPoint[] = [];
    const starts = [...this.minutes.keys()].sort((a, b) => a - b);
    for (const start of starts) {
      if (!all && start + MINUTE + this.grace > now) break;
      const b = this.minutes.get(start)!;
      this.minutes.delete(start);
      this.writtenThrough = Math.max(this.writtenThrough, start + MINUTE);
      points.push(...this.points(b, '1m', MINUTE));
      this.stats.minutesWritten++;
      this.merge(this.bucket(this.hours, Math.floor(start / HOUR) * HOUR), b);
    }
    for (const start of [...this.hours.keys()].sort((a, b) => a - b)) {
      if (!all && start + HOUR + this.grace > now) break;
      const b = this.hours.get(start)!;
      this.hours.delete(start);
      points.push(...this.points(b, '1h', HOUR));
      this.stats.hoursWritten++;
    }
    // Idle trackers of GPUs silent for a day are forgotten (bounded memory).
    if (now - this.lastSweep > HOUR) {
      this.lastSweep = now;
      for (const [k, v] of this.idle) if (now - v.lastTs > 24 * HOUR) this.idle.delete(k);
    }
    if (points.length > 0) this.opts.emit(points);
  }

  /** Open minute buckets (tests, metrics). */
  get openMinutes(): number {
    return this.minutes.size;
  }

  private bucket(map: Map<number, Bucket>, start: number): Bucket {
    let b = map.get(start);
    if (!b) {
      b = { start, gpus: new Map(), usage: new Map(), seen: new Map() };
      map.set(start, b);
    }
    return b;
  }

  private usageAcc(b: Bucket, kind: UsageAcc['kind'], project?: string, user?: string): UsageAcc {
    const key =
      kind === 'cluster' ? 'c' : kind === 'project' ? `p\u0000${project}` : `u\u0000${project}\u0000${user}`;
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
    const byGpu = new Map<string, GpuProcess[]>();
    for (const p of processes) {
      const list = byGpu.get(p.gpuUuid);
      if (list) list.push(p);
      else byGpu.set(p.gpuUuid, [p]);
    }
    const cluster = this.usageAcc(b, 'cluster');
    for (const gpu of gpus) {
      const procs = byGpu.get(gpu.uuid);
      const shares: ProcessShare[] = procs ? splitGpu(this.opts.attribution, node, gpu, procs) : [];
      const held = shares.length > 0;
      const util = gpu.utilizationGpuPercent;
      const power = gpu.powerDrawWatts;
      const mem = gpu.memoryUsedMiB;
      const idleHeld = this.idleHeld(
        `${node}\u0000${gpu.uuid}`,
        ts,
        held && util !== null && util < this.thr,
      );
      const energyWh = power !== null ? (power * dt) / 3600 : 0;

      const gk = `${node}\u0000${gpu.uuid}`;
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
      if (held) g.inUse += dt;
      if (idleHeld) g.idle += dt;

      cluster.seconds += dt;
      cluster.energyWh += energyWh;
      if (held) cluster.inUse += dt;
      if (idleHeld) cluster.idle += dt;
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
        const w = s.share * dt;
        g.projects.set(s.project, (g.projects.get(s.project) ?? 0) + w);
        for (const u of [
          this.usageAcc(b, 'project', s.project),
          this.usageAcc(b, 'user', s.project, s.user ?? 'unknown'),
        ]) {
          u.inUse += w;
          if (idleHeld) u.idle += w;
          u.energyWh += s.share * energyWh;
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
