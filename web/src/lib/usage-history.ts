import type { ProjectsUsage } from '@gpupulse/protocol';
import { RingBuffer } from './ring-buffer.ts';

/** One point of GPUs in use per project. */
export interface UsagePoint {
  t: number;
  values: Record<string, number>;
}

export interface UsageHistoryOptions {
  /** Per-second points kept (default 3,600 = 1 h). */
  fineCapacity?: number;
  /** Per-minute means kept (default 10,080 = 7 d). */
  coarseCapacity?: number;
  /** Coarse bucket (ms), default 60,000. */
  bucketMs?: number;
}

/**
 * GPUs in use per project since the page loaded, for when the server has no history: a fine
 * ring (1 h at 1 Hz) and a coarse ring of per-minute means (7 d). Both bounded.
 */
export class UsageHistory {
  readonly fine: RingBuffer<UsagePoint>;
  readonly coarse: RingBuffer<UsagePoint>;
  private readonly bucketMs: number;
  private bucketStart = -1;
  private bucketSums: Record<string, number> = {};
  private bucketCount = 0;

  constructor(options: UsageHistoryOptions = {}) {
    this.fine = new RingBuffer(options.fineCapacity ?? 3600);
    this.coarse = new RingBuffer(options.coarseCapacity ?? 7 * 24 * 60);
    this.bucketMs = options.bucketMs ?? 60_000;
  }

  add(t: number, values: Record<string, number>): void {
    const last = this.fine.last();
    if (last && t <= last.t) return; // out of order or duplicate (e.g. a resync)
    this.fine.push({ t, values });
    const bucket = Math.floor(t / this.bucketMs) * this.bucketMs;
    if (bucket !== this.bucketStart) {
      this.flush();
      this.bucketStart = bucket;
    }
    for (const [k, v] of Object.entries(values)) this.bucketSums[k] = (this.bucketSums[k] ?? 0) + v;
    this.bucketCount++;
  }

  addUsage(usage: ProjectsUsage): void {
    const values: Record<string, number> = {};
    for (const p of usage.projects) values[p.project] = p.gpusInUse;
    this.add(usage.serverTime, values);
  }

  private flush(): void {
    if (this.bucketCount === 0 || this.bucketStart < 0) return;
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.bucketSums)) values[k] = v / this.bucketCount;
    this.coarse.push({ t: this.bucketStart, values });
    this.bucketSums = {};
    this.bucketCount = 0;
  }

  /** Points from `from` on: the fine ring for spans it covers, else coarse minutes (+ the open minute). */
  range(from: number): UsagePoint[] {
    const first = this.fine.at(0);
    if (first && first.t <= from) return this.fine.toArray().filter((p) => p.t >= from);
    const out = this.coarse.toArray().filter((p) => p.t >= from);
    if (this.bucketCount > 0) {
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(this.bucketSums)) values[k] = v / this.bucketCount;
      out.push({ t: this.bucketStart, values });
    }
    // Less than a minute of data: the fine points are all there is.
    return out.length >= 2 ? out : this.fine.toArray().filter((p) => p.t >= from);
  }

  /** Every project id seen in the points. */
  static keys(points: readonly UsagePoint[]): string[] {
    const s = new Set<string>();
    for (const p of points) for (const k of Object.keys(p.values)) s.add(k);
    return [...s];
  }

  clear(): void {
    this.fine.clear();
    this.coarse.clear();
    this.bucketStart = -1;
    this.bucketSums = {};
    this.bucketCount = 0;
  }
}
