import { SegmentedLog } from '@gpupulse/node';
import type { Logger } from 'pino';
import { type EncodedPoint, encodedRecord, type MetricPoint } from './metric-store.ts';

export interface WriteJournalOptions {
  /** Directory of the journal's segment files (created when missing). */
  dir: string;
  /** Most bytes on disk (default 256 MiB); beyond it the oldest records lose their crash copy (counted). */
  maxBytes?: number;
  /** A segment is closed and a new one started beyond this size (default 4 MiB). */
  segmentBytes?: number;
  logger?: Logger;
}

export interface WriteJournalStats {
  /** Points appended to the journal since start. */
  pointsJournaled: number;
  /** Points whose journal append failed (disk full, I/O error): in memory only until written. */
  pointsNotJournaled: number;
  /** Points of a crashed run found in the journal at start and handed on again. */
  pointsRecovered: number;
  /** Records dropped by the size bound while their points were still in memory. */
  recordsDropped: number;
}

/**
 * The write buffer's write-ahead journal: every batch of points the server is about to ack goes to
 * disk (one `write(2)` per batch, no fsync) before the ack, and leaves the journal once it left the
 * write buffer's memory — written to storage, moved to the disk spool, or refused by storage. So a
 * server that is killed (SIGKILL, OOM, a crash) between acking samples and writing them loses
 * none: at the next start `recover` hands the journal's batches on again (to the disk spool), and
 * InfluxDB absorbs the few that may have been written already (same series and time: one point).
 * What `write(2)` put in the page cache survives the process; a power cut within the kernel's
 * write-back delay (seconds) can still lose the newest batches.
 *
 * Batches leave memory oldest first, so the journal counts released points (`release(n)`) and
 * removes its oldest records as their points are all released. One exception keeps that exact
 * enough: a batch in flight to storage while the backlog spills to the disk spool is released
 * after newer points; should that write fail, the batch goes to the disk spool as well.
 */
export class WriteJournal {
  readonly dir: string;
  private readonly log: SegmentedLog;
  private readonly logger: Logger | undefined;
  /** Records whose points are still in memory, oldest first (id null: not on disk). */
  private pending: { id: number | null; count: number }[] = [];
  private head = 0;
  /** Points released beyond the records removed so far. */
  private released = 0;
  private appendFailed = false;
  readonly stats: WriteJournalStats = {
    pointsJournaled: 0,
    pointsNotJournaled: 0,
    pointsRecovered: 0,
    recordsDropped: 0,
  };

  constructor(opts: WriteJournalOptions) {
    this.dir = opts.dir;
    this.logger = opts.logger;
    const maxBytes = Math.max(64 * 1024, opts.maxBytes ?? 256 * 1024 ** 2);
    this.log = new SegmentedLog({
      dir: opts.dir,
      maxBytes,
      segmentBytes: Math.max(4096, Math.min(opts.segmentBytes ?? 4 * 1024 ** 2, Math.floor(maxBytes / 4))),
      onDiskFull: 'throw',
      logger: opts.logger,
      onDrop: (reason, records) => {
        if (reason === 'unreadable') return;
        this.stats.recordsDropped += records;
        this.logger?.warn(
          { reason, records, dir: this.dir },
          'write journal over its bound: the oldest batches in memory lost their crash copy',
        );
      },
    });
  }

  /** Records waiting on disk (of this run, or of a crashed one before `recover`). */
  get records(): number {
    return this.log.records;
  }

  /**
   * Puts a batch on disk before it is acked. Never throws: when the disk refuses, the batch stays
   * in memory only (as without a journal), counted and logged once until appends work again.
   */
  append(points: readonly EncodedPoint[]): void {
    if (points.length === 0) return;
    let id: number | null = null;
    try {
      id = this.log.append(Buffer.from(JSON.stringify(points), 'utf8'), { count: points.length });
    } catch (err) {
      if (!this.appendFailed) {
        this.logger?.error(
          { err: err instanceof Error ? err.message : String(err), dir: this.dir },
          'cannot write the write journal; acked points are kept in memory only until written (counted)',
        );
      }
      this.appendFailed = true;
    }
    if (id === null) this.stats.pointsNotJournaled += points.length;
    else {
      if (this.appendFailed) {
        this.appendFailed = false;
        this.logger?.info({ dir: this.dir }, 'write journal writable again');
      }
      this.stats.pointsJournaled += points.length;
    }
    this.pending.push({ id, count: points.length });
  }

  /** `n` of the oldest points in memory left it (written, spooled, refused or dropped). */
  release(n: number): void {
    if (n <= 0) return;
    this.released += n;
    const ids: number[] = [];
    while (this.head < this.pending.length && this.pending[this.head]!.count <= this.released) {
      const rec = this.pending[this.head++]!;
      this.released -= rec.count;
      if (rec.id !== null) ids.push(rec.id);
    }
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
      // Everything in memory is released: a surplus (points that never went through `append`,
      // such as a recovered batch) must not release later records early.
      this.released = 0;
    } else if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    if (ids.length > 0) this.log.remove(ids);
  }

  /**
   * Hands every batch a crashed run left in the journal to `take` (oldest first) and removes it
   * once `take` returned; a `take` that throws leaves the rest for the next start. Call before the
   * first `append`. Returns the points handed on. `encode`: the store's, for a record of points
   * journaled as objects by an earlier version.
   */
  recover(
    take: (points: EncodedPoint[]) => void,
    encode: (point: MetricPoint) => EncodedPoint | null,
  ): number {
    let points = 0;
    for (let first = this.log.first(); first; first = this.log.first()) {
      const buf = this.log.read(first.id); // null: unreadable, dropped and counted by the log
      if (buf) {
        let batch: EncodedPoint[] | null = null;
        try {
          const items: unknown = JSON.parse(buf.toString('utf8'));
          if (!Array.isArray(items)) throw new Error('not a batch');
          batch = encodedRecord(items, encode);
        } catch {
          this.logger?.error({ dir: this.dir, id: first.id }, 'corrupt write-journal record; skipped');
        }
        if (batch) {
          take(batch);
          points += batch.length;
        }
      }
      this.log.remove([first.id]);
    }
    this.stats.pointsRecovered += points;
    if (points > 0 || this.log.opened.tornRecords > 0) {
      this.logger?.warn(
        { points, tornRecords: this.log.opened.tornRecords, dir: this.dir },
        'write journal: points acked by an earlier run that ended before writing them are written now',
      );
    }
    return points;
  }

  close(): void {
    this.log.close();
  }
}
