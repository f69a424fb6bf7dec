import type { Sample } from '@gpupulse/protocol';

/**
 * Unacked samples waiting for the server. Bounded: when full, the oldest sample is dropped and
 * counted. The in-memory queue below is the default; a disk spool can implement the same interface.
 */
export interface SampleQueue {
  /** Adds a sample (seq order); drops the oldest when full. */
  push(sample: Sample): void;
  /** The most recently pushed sample still queued, if any. */
  newest(): Sample | undefined;
  /** Up to `max` of the oldest queued samples, oldest first, skipping `exclude`. */
  oldest(max: number, exclude?: number): Sample[];
  has(seq: number): boolean;
  /** Removes samples (acked, or rejected as invalid); returns how many were removed. */
  remove(seqs: Iterable<number>): number;
  /** Counts samples dropped outside the queue (e.g. rejected by the server). */
  countDropped(n: number): void;
  /**
   * Samples dropped for room while a report carrying them was in flight, which the server then
   * acknowledged: stored after all, so no longer counted as dropped.
   */
  countDelivered(n: number): void;
  readonly size: number;
  /** Bytes held, when the implementation knows (a disk spool); null otherwise. */
  readonly bytes: number | null;
  /** Samples dropped since start (overflow + rejected). */
  readonly dropped: number;
  /** The sequence number to continue from (a disk spool persists it); undefined: start at 0. */
  readonly nextSeq?: number;
  close?(): Promise<void>;
}

export const DEFAULT_QUEUE_CAPACITY = 3600;

export class MemoryQueue implements SampleQueue {
  private readonly items = new Map<number, Sample>();
  private lastSeq: number | null = null;
  private droppedCount = 0;

  constructor(private readonly capacity = DEFAULT_QUEUE_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error('queue capacity must be a positive integer');
  }

  push(sample: Sample): void {
    this.items.set(sample.seq, sample);
    this.lastSeq = sample.seq;
    while (this.items.size > this.capacity) {
      const first = this.items.keys().next();
      if (first.done) break;
      this.items.delete(first.value);
      this.droppedCount++;
    }
  }

  newest(): Sample | undefined {
    return this.lastSeq === null ? undefined : this.items.get(this.lastSeq);
  }

  oldest(max: number, exclude?: number): Sample[] {
    const out: Sample[] = [];
    for (const [seq, s] of this.items) {
      if (out.length >= max) break;
      if (seq !== exclude) out.push(s);
    }
    return out;
  }

  has(seq: number): boolean {
    return this.items.has(seq);
  }

  remove(seqs: Iterable<number>): number {
    let n = 0;
    for (const seq of seqs) if (this.items.delete(seq)) n++;
    return n;
  }

  countDropped(n: number): void {
    this.droppedCount += n;
  }

  countDelivered(n: number): void {
    this.droppedCount -= n;
  }

  get size(): number {
    return this.items.size;
  }

  get bytes(): number | null {
    return null;
  }

  get dropped(): number {
    return this.droppedCount;
  }
}
