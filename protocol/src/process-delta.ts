/**
 * Process lists as they travel: the agent encodes each interval's full list as a full list or a
 * delta (`ProcessDeltaEncoder`), the server applies what a sample carries to the list in effect
 * (`applyProcessUpdate`). Both sides live here so that they agree on what identifies a process
 * (`processKey`) and on what a delta means; process-delta.test.ts checks the round trip.
 */
import { type GpuProcess, type GpuProcessKey, LIMITS, type Sample } from './schemas.ts';

/** What a sample says about processes: a full list, a delta (`processesGone` included), or nothing. */
export type ProcessUpdate = Partial<Pick<Sample, 'processes' | 'processesMode' | 'processesGone'>>;

/** One process on one GPU: the same pid on another GPU (or MIG device) is another process. */
export function processKey(p: { gpuUuid: string; pid: number }): string {
  return `${p.gpuUuid}\u0000${p.pid}`;
}

export interface ProcessDeltaOptions {
  /** A full list at least this often (default 60 s); deltas in between. 0: always full. */
  fullEveryMs?: number;
  /** A process whose GPU memory moved by more than this fraction is resent (default 0.05). */
  memoryChange?: number;
}

/**
 * Turns the full process list of each interval into what is sent: a full list (`processesMode:
 * 'full'`) first and then every `fullEveryMs`, in between only changes (`'delta'`: new processes,
 * processes whose memory moved by > memoryChange or whose name or start changed, and
 * `processesGone`), nothing (`{}`) when nothing changed.
 */
export class ProcessDeltaEncoder {
  private sent = new Map<string, GpuProcess>();
  private lastFullAt: number | null = null;
  private readonly fullEveryMs: number;
  private readonly memoryChange: number;

  constructor(options: ProcessDeltaOptions = {}) {
    this.fullEveryMs = options.fullEveryMs ?? 60_000;
    this.memoryChange = options.memoryChange ?? 0.05;
  }

  /** The next list must be full (a sample was lost, the collector failed, or the server may have missed deltas). */
  forceFull(): void {
    this.lastFullAt = null;
  }

  private changed(before: GpuProcess, now: GpuProcess): boolean {
    if (before.startedAt !== now.startedAt || before.name !== now.name) return true;
    const a = before.usedMemoryMiB;
    const b = now.usedMemoryMiB;
    if (a === null || b === null) return a !== b;
    if (a === 0) return b !== 0;
    return Math.abs(b - a) > this.memoryChange * a;
  }

  next(list: readonly GpuProcess[], now: number): ProcessUpdate {
    if (this.lastFullAt === null || now - this.lastFullAt >= this.fullEveryMs) {
      this.lastFullAt = now;
      this.sent = new Map(list.map((p) => [processKey(p), p]));
      return { processes: [...list], processesMode: 'full' };
    }
    const changed: GpuProcess[] = [];
    const seen = new Set<string>();
    for (const p of list) {
      const k = processKey(p);
      seen.add(k);
      const before = this.sent.get(k);
      if (!before || this.changed(before, p)) {
        changed.push(p);
        this.sent.set(k, p);
      }
    }
    const gone: GpuProcessKey[] = [];
    for (const [k, p] of this.sent) {
      if (seen.has(k)) continue;
      gone.push({ gpuUuid: p.gpuUuid, pid: p.pid });
      this.sent.delete(k);
    }
    if (changed.length === 0 && gone.length === 0) return {};
    const out: ProcessUpdate = { processes: changed, processesMode: 'delta' };
    if (gone.length > 0) out.processesGone = gone.slice(0, LIMITS.maxProcessesPerSample);
    return out;
  }
}

/**
 * Applies a sample's process update to the list in effect: a full list replaces it, a delta
 * removes `processesGone` and adds or replaces `processes` (by `processKey`), nothing keeps it
 * (the same array is returned, so callers can compare by identity).
 */
export function applyProcessUpdate(
  prev: readonly GpuProcess[],
  update: ProcessUpdate,
): readonly GpuProcess[] {
  if (update.processesMode !== 'delta') return update.processes ?? prev;
  if (!update.processes?.length && !update.processesGone?.length) return prev;
  const map = new Map(prev.map((p) => [processKey(p), p]));
  for (const g of update.processesGone ?? []) map.delete(processKey(g));
  for (const p of update.processes ?? []) map.set(processKey(p), p);
  return [...map.values()];
}
