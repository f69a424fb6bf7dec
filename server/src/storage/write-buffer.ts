import { backoffDelay } from '@gpupulse/node';
import type { Logger } from 'pino';
import type { WriteJournal } from './journal.ts';
import { type EncodedPoint, type MetricPoint, type MetricStore, StoreWriteError } from './metric-store.ts';
import type { DiskSpool } from './spool.ts';

export interface WriteBufferOptions {
  store: MetricStore;
  /** Points per chunk in memory, journal and spool record, and per write when storage keeps up (default 5,000). */
  batchSize?: number;
  /**
   * Most points per write (default 4 × batchSize): while more than one chunk (or spool record)
   * waits, a write takes the oldest ones up to this many. A write's round trip includes the wait
   * for a busy event loop (a second's reports arrive in one burst), so at 1,000 nodes × 8 GPUs
   * one chunk per round trip is fewer points than arrive; a few chunks at once catch up.
   */
  maxWritePoints?: number;
  /**
   * …and up to this many characters of encoded points (≈ bytes of line protocol; default 4 MiB):
   * InfluxDB 3 refuses a request body over 10 MiB by default. A single chunk goes as it is.
   */
  maxWriteBytes?: number;
  /** A partial batch is written after this long (default 1 s). */
  flushIntervalMs?: number;
  /**
   * Most points held in memory; beyond it the oldest are dropped and counted (default 100,000).
   * Agents' reports are refused (`admit`) well before: only the server's own points (rollups,
   * usage, alerts) can reach it, and only when the spool cannot take them.
   */
  maxPoints?: number;
  /**
   * With a spool: a backlog beyond this many points in memory goes to the disk spool, and new
   * points queue behind it there until it drains (default maxPoints / 4). Storage that is slow,
   * not only storage that fails, so costs disk, never memory or data.
   */
  spillPoints?: number;
  /**
   * With a spool: `admit` refuses once the spool holds this share of its `maxBytes` (default
   * 0.9), so the spool never has to delete acked points to make room.
   */
  spoolHighWater?: number;
  /**
   * The retry hint `admit` gives with a refusal: the time storage needs to write the backlog at
   * its recent write rate (the last one measured, also while writes fail), at least this (default
   * 5 s) and at most `maxRetryAfterMs` (default 60 s), ±25 % jitter.
   */
  retryAfterMs?: number;
  maxRetryAfterMs?: number;
  /** First retry delay (default 250 ms); doubles per failure up to `maxBackoffMs` (default 30 s), ±25 % jitter (@gpupulse/node's backoffDelay). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  logger?: Logger;
  observer?: WriteBufferObserver;
  /** Random source for the jitter (tests). */
  random?: () => number;
  /**
   * Disk spool for outages: a batch that fails with a retryable error goes to the spool, and while
   * the spool is not empty every new batch goes behind it, so points reach storage in order.
   * Without one, failed batches wait in memory (bounded by `maxPoints`).
   */
  spool?: DiskSpool;
  /**
   * Write-ahead journal (with the spool): `enqueue` puts each batch on disk before the caller acks
   * it, and a batch leaves the journal when it leaves memory, so a killed server loses no acked
   * point (`WriteJournal.recover` at the next start).
   */
  journal?: WriteJournal;
}

export type DropReason = 'overflow' | 'rejected' | 'shutdown' | 'spool_full' | 'spool_corrupt';

/** Hooks for metrics. */
export interface WriteBufferObserver {
  /** One write attempt ended: `ok`, `retry` (retryable failure) or `rejected` (4xx, dropped). */
  batch?(result: 'ok' | 'retry' | 'rejected', points: number, seconds: number): void;
  /**
   * Points dropped: `overflow` (buffer full), `rejected` (4xx), `shutdown` (not flushed in time),
   * `spool_full` (oldest spool segment deleted), `spool_corrupt` (unreadable spool record).
   */
  dropped?(reason: DropReason, points: number): void;
  /** Points moved to the disk spool. */
  spooled?(points: number): void;
  /** A report refused by `admit` (`backlog_full`, `spool_full`). */
  refused?(reason: 'backlog_full' | 'spool_full'): void;
}

/** `admit`'s answer: take the points, or refuse the report (nothing is dropped either way). */
export type Admission =
  | { ok: true }
  | { ok: false; reason: 'backlog_full' | 'spool_full'; message: string; retryAfterMs: number };
export type Refusal = Extract<Admission, { ok: false }>;

type RefusalKind = 'backlog_full' | 'spool_full' | 'stopped';

export interface WriteBufferStats {
  buffered: number;
  /** Reports refused by `admit` (their agents keep the samples and resend). */
  refused: number;
  /** Times the backlog passed `spillPoints` and went to the disk spool. */
  spills: number;
  batchesOk: number;
  batchesRetried: number;
  batchesRejected: number;
  pointsWritten: number;
  pointsRejected: number;
  pointsDroppedOverflow: number;
  pointsDroppedShutdown: number;
  pointsSpooled: number;
  consecutiveFailures: number;
}

/**
 * Bounded write buffer in front of a `MetricStore`: batches by size and time, one write in flight,
 * retries only retryable failures (network, 5xx, 429) with exponential backoff and ±25 % jitter,
 * drops and counts what InfluxDB refuses (4xx) and what does not fit.
 */
export class WriteBuffer {
  private readonly store: MetricStore;
  private readonly batchSize: number;
  private readonly maxWritePoints: number;
  private readonly maxWriteBytes: number;
  private readonly flushIntervalMs: number;
  readonly maxPoints: number;
  /** Agents' points are refused beyond this backlog in memory (80 % of maxPoints). */
  readonly acceptPoints: number;
  readonly spillPoints: number;
  private readonly spoolHighWater: number;
  private readonly retryAfterMs: number;
  private readonly maxRetryAfterMs: number;
  /** Points per second storage took in recent writes (moving average); null before the first. */
  private writeRate: number | null = null;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly logger: Logger | undefined;
  private readonly observer: WriteBufferObserver;
  private readonly random: () => number;
  readonly spool: DiskSpool | null;
  readonly journal: WriteJournal | null;
  /** Chunks of at most batchSize points (encoded by the store as they came in), oldest first. */
  private chunks: EncodedPoint[][] = [];
  /** The oldest batch while it is in flight or was put back after a failed write (for the journal). */
  private held: EncodedPoint[] | null = null;
  /** Points that left memory behind `held` (released to the journal with it). */
  private releasedBehindHeld = 0;
  private size = 0;
  private inFlight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryAt = 0;
  private stopped = false;
  private readonly loggedReasons = new Set<string>();
  /** Since when `admit` refuses (null: it takes reports). */
  private refusing: { since: number; refusedBefore: number } | null = null;
  readonly stats: WriteBufferStats = {
    buffered: 0,
    refused: 0,
    spills: 0,
    batchesOk: 0,
    batchesRetried: 0,
    batchesRejected: 0,
    pointsWritten: 0,
    pointsRejected: 0,
    pointsDroppedOverflow: 0,
    pointsDroppedShutdown: 0,
    pointsSpooled: 0,
    consecutiveFailures: 0,
  };

  constructor(opts: WriteBufferOptions) {
    this.store = opts.store;
    this.batchSize = Math.max(1, opts.batchSize ?? 5000);
    this.maxWritePoints = Math.max(this.batchSize, opts.maxWritePoints ?? 4 * this.batchSize);
    this.maxWriteBytes = opts.maxWriteBytes ?? 4 * 1024 ** 2;
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000;
    this.maxPoints = Math.max(this.batchSize, opts.maxPoints ?? 100_000);
    this.acceptPoints = Math.max(1, Math.floor(this.maxPoints * 0.8));
    this.spillPoints = Math.max(
      1,
      Math.min(this.acceptPoints, opts.spillPoints ?? Math.floor(this.maxPoints / 4)),
    );
    this.spoolHighWater = Math.min(1, Math.max(0.1, opts.spoolHighWater ?? 0.9));
    this.retryAfterMs = Math.max(1, opts.retryAfterMs ?? 5000);
    this.maxRetryAfterMs = Math.max(this.retryAfterMs, opts.maxRetryAfterMs ?? 60_000);
    this.initialBackoffMs = opts.initialBackoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.logger = opts.logger;
    this.observer = opts.observer ?? {};
    this.random = opts.random ?? Math.random;
    this.spool = opts.spool ?? null;
    this.journal = opts.journal ?? null;
    // A crashed run's acked points come first: to the disk spool (drained before new points), or
    // without a spool into memory — journaled again, so the journal's count of what memory holds
    // stays exact.
    const recovered: EncodedPoint[][] = [];
    this.journal?.recover(
      (batch) => {
        if (this.spool) this.spool.append(batch);
        else recovered.push(batch);
      },
      (point) => this.store.encode(point),
    );
    for (const batch of recovered) {
      this.journal?.append(batch);
      this.pushChunks(batch);
    }
  }

  /** Points waiting in the disk spool. */
  get spooled(): number {
    return this.spool ? this.spool.stats.points : 0;
  }

  /** True while the spool holds points (new batches then go behind them). */
  private get spooling(): boolean {
    return this.spool !== null && !this.spool.empty;
  }

  /** Points waiting in memory (including a batch in flight); see `spooled` for the disk spool. */
  get buffered(): number {
    return this.size;
  }

  /** Room left before the bound. */
  get free(): number {
    return Math.max(0, this.maxPoints - this.size);
  }

  /**
   * Whether a report of `points` points may be taken now. Refuses (and counts) when taking it
   * would mean dropping points later: the spool is near its bound, or — without a spool, or when
   * the spool cannot be written — the backlog in memory is at `acceptPoints`. A refused agent
   * keeps its samples and resends them; nothing is lost.
   */
  admit(points: number): Admission {
    const over = this.overBound(points);
    if (over) return this.refuse(over);
    if (this.refusing) {
      this.logger?.info(
        {
          refused: this.stats.refused - this.refusing.refusedBefore,
          forMs: Date.now() - this.refusing.since,
        },
        'storage caught up: taking reports again',
      );
      this.refusing = null;
    }
    return { ok: true };
  }

  /**
   * `admit`'s refusal when a report of `points` points would be refused now, else null — without
   * ending a refusal episode. For refusing a report before it is parsed or validated (`points`:
   * an estimate, or 1 for "any report"); one that passes goes through `admit` after validation.
   */
  refuseEarly(points: number): Refusal | null {
    const over = this.overBound(points);
    return over ? this.refuse(over) : null;
  }

  /** True when `admit` would refuse a report of `points` points now (nothing is counted). */
  wouldRefuse(points: number): boolean {
    return this.overBound(points) !== null;
  }

  /** True when `admit` would refuse even a one-point report now. */
  get full(): boolean {
    return this.wouldRefuse(1);
  }

  private overBound(points: number): RefusalKind | null {
    if (this.stopped) return 'stopped';
    if (this.spool) {
      // What memory holds goes to the spool too when storage stays behind: count it in, at the
      // spool's own bytes per point, so the spool never has to delete a segment of acked points.
      const bytes = this.spool.stats.bytes;
      const perPoint = this.spool.bytesPerPoint;
      if (bytes + (this.size + points) * perPoint >= this.spool.maxBytes * this.spoolHighWater) {
        return 'spool_full';
      }
    }
    // Without a spool the memory backlog is the bound; with one it only fills when the spool
    // cannot be written (disk full …).
    if (this.size > 0 && this.size + points > this.acceptPoints) return 'backlog_full';
    return null;
  }

  /**
   * The retry hint of a refusal: how long storage needs for the backlog (memory + spool) at its
   * recent write rate (the last one measured while writes fail; none measured yet: the shortest),
   * between `retryAfterMs` and `maxRetryAfterMs`, ±25 % jitter — the longer the backlog, the later
   * agents come back.
   */
  retryHint(): number {
    let ms = this.retryAfterMs;
    if (!this.stopped && this.writeRate !== null && this.writeRate > 0) {
      const drainMs = ((this.size + this.spooled) / this.writeRate) * 1000;
      ms = Math.min(this.maxRetryAfterMs, Math.max(this.retryAfterMs, drainMs));
    }
    return Math.round(ms * (0.75 + this.random() * 0.5));
  }

  private refuse(kind: RefusalKind): Refusal {
    const reason = kind === 'stopped' ? 'backlog_full' : kind;
    const message =
      kind === 'stopped'
        ? 'the server is shutting down; retry later'
        : kind === 'spool_full'
          ? 'storage is behind and the server spool is full; keep the samples and retry later'
          : 'storage backlog is full; keep the samples and retry later';
    this.stats.refused++;
    this.observer.refused?.(reason);
    if (!this.refusing) {
      // Logged once per episode (and when it ends); every refusal is counted in /metrics.
      this.refusing = { since: Date.now(), refusedBefore: this.stats.refused - 1 };
      this.logger?.warn(
        { reason, buffered: this.size, spooled: this.spooled, acceptPoints: this.acceptPoints },
        'storage is behind: refusing reports with UNAVAILABLE until it catches up (agents keep their samples)',
      );
    }
    return { ok: false, reason, message, retryAfterMs: this.retryHint() };
  }

  /** Starts the periodic flush. */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.kick(true), this.flushIntervalMs);
    this.timer.unref();
    if (this.spooling) this.kick(true);
  }

  /**
   * Takes points to write: each is encoded by the store once, here (what memory, the journal and
   * the spool hold from then on); one the store cannot encode is dropped and counted as
   * `rejected`, as storage would refuse it.
   */
  enqueue(points: readonly MetricPoint[]): void {
    if (this.stopped || points.length === 0) return;
    const encoded: EncodedPoint[] = [];
    for (let i = 0; i < points.length; i++) {
      const e = this.store.encode(points[i]!);
      if (e !== null) encoded.push(e);
    }
    if (encoded.length < points.length) this.unstorable(points.length - encoded.length);
    if (encoded.length === 0) return;
    this.journal?.append(encoded);
    this.pushChunks(encoded);
    if (this.spool && this.size > this.spillPoints) {
      // Storage is slower than the input: the backlog goes to disk, new points queue behind it
      // (also while a write is in flight, which may hang for the store's timeout).
      if (!this.spooling) this.stats.spills++;
      if (!this.loggedReasons.has('spill')) {
        this.loggedReasons.add('spill');
        this.logger?.warn(
          { buffered: this.size, spillPoints: this.spillPoints, dir: this.spool.dir },
          'write backlog past its bound: spooling to disk until storage catches up (logged once; see /metrics)',
        );
      }
      this.moveToSpool();
    }
    const over = this.size - this.maxPoints;
    if (over > 0) this.dropOldest(over);
    this.stats.buffered = this.size;
    if (this.chunks.length > 1 || (this.chunks[0]?.length ?? 0) >= this.batchSize) this.kick(false);
  }

  private unstorable(n: number): void {
    this.stats.pointsRejected += n;
    this.observer.dropped?.('rejected', n);
    if (!this.loggedReasons.has('unstorable')) {
      this.loggedReasons.add('unstorable');
      this.logger?.error(
        { points: n },
        "points storage cannot hold (see the store's log line for why); dropped and counted as rejected (logged once)",
      );
    }
  }

  private pushChunks(points: readonly EncodedPoint[]): void {
    for (const p of points) {
      let last = this.chunks[this.chunks.length - 1];
      if (!last || last.length >= this.batchSize) {
        last = [];
        this.chunks.push(last);
      }
      last.push(p);
    }
    this.size += points.length;
  }

  /**
   * `n` points left memory (written, spooled, refused or dropped), oldest first — except while a
   * batch is held (in flight to storage, or put back after a failed write): it is the oldest, so
   * what leaves behind it is released to the journal only together with it (`chunk`: the chunk
   * that left, to recognise the held one).
   */
  private left(n: number, chunk?: readonly EncodedPoint[]): void {
    this.size -= n;
    if (!this.journal) return;
    if (this.held === null) this.journal.release(n);
    else if (chunk === this.held) {
      this.journal.release(n + this.releasedBehindHeld);
      this.held = null;
      this.releasedBehindHeld = 0;
    } else this.releasedBehindHeld += n;
  }

  /**
   * Writes everything buffered, retrying retryable failures until `timeoutMs` (default 10 s) has
   * passed; what is left then is dropped and counted. Stops the timers. For shutdown.
   */
  async flush(timeoutMs = 10_000): Promise<void> {
    this.stopTimers();
    const deadline = Date.now() + timeoutMs;
    if (this.inFlight) await this.inFlight;
    let backoff = this.initialBackoffMs;
    while ((this.size > 0 || this.spooling) && Date.now() < deadline) {
      // A write started meanwhile (points still arriving kick one) holds its batch: wait for it.
      // Without this the loop found nothing to take and went round on microtasks alone — the
      // event loop starved, that write never finished, and its points were dropped at the deadline.
      if (this.inFlight) {
        await this.inFlight;
        continue;
      }
      const ok = await this.writeOne(true);
      if (!ok) {
        if (this.spool) {
          // Storage is down: keep the rest on disk for the next start instead of waiting.
          this.moveToSpool();
          if (this.size === 0) break;
        }
        const wait = Math.min(backoff, deadline - Date.now());
        if (wait <= 0) break;
        await new Promise((r) => setTimeout(r, wait));
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
      }
    }
    if (this.size > 0 && this.spool) this.moveToSpool();
    if (this.size > 0) {
      const n = this.size;
      this.chunks = [];
      this.held = null;
      this.releasedBehindHeld = 0;
      this.left(n);
      this.stats.buffered = 0;
      this.stats.pointsDroppedShutdown += n;
      this.observer.dropped?.('shutdown', n);
      this.logger?.error({ points: n }, 'points not written before shutdown; dropped');
    }
  }

  /** Flushes (bounded by timeoutMs; with a spool, what is left stays on disk) and refuses further points. */
  async close(timeoutMs = 10_000): Promise<void> {
    await this.flush(timeoutMs);
    this.stopped = true;
    this.spool?.close();
    this.journal?.close();
  }

  private stopTimers(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = null;
    this.retryTimer = null;
  }

  private dropOldest(n: number): void {
    let left = n;
    while (left > 0 && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      if (first.length <= left) {
        this.chunks.shift();
        left -= first.length;
        this.left(first.length, first);
      } else {
        first.splice(0, left);
        this.left(left);
        left = 0;
      }
    }
    const dropped = n - left;
    this.stats.pointsDroppedOverflow += dropped;
    this.observer.dropped?.('overflow', dropped);
    if (!this.loggedReasons.has('overflow')) {
      this.loggedReasons.add('overflow');
      this.logger?.error(
        { maxPoints: this.maxPoints, dropped },
        'write buffer full: dropping the oldest points (counted in /metrics; logged once)',
      );
    }
  }

  /** Starts a write if none is running and one is due (`partial`: a partial chunk may go). */
  private kick(partial: boolean): void {
    if (this.inFlight || this.stopped) return;
    const spooling = this.spooling;
    // While the spool holds points, new ones queue behind them on disk (order is kept, memory stays small).
    if (spooling) this.moveToSpool();
    if (this.size === 0 && !spooling) return;
    if (Date.now() < this.retryAt) return;
    if (!spooling && !partial && this.chunks.length <= 1 && (this.chunks[0]?.length ?? 0) < this.batchSize)
      return;
    this.inFlight = this.writeOne(false)
      .then((ok) => {
        this.inFlight = null;
        if (ok && (this.spooling || (this.chunks[0]?.length ?? 0) >= this.batchSize)) this.kick(false);
      })
      .catch((err) => {
        this.inFlight = null;
        this.logger?.error({ err }, 'write buffer: unexpected error');
      }) as Promise<void>;
  }

  /**
   * The oldest chunk, with the chunks after it while the points stay within `maxWritePoints` and
   * their text within `maxWriteBytes`.
   */
  private takeChunks(): EncodedPoint[] | undefined {
    const first = this.chunks.shift();
    if (first === undefined) return undefined;
    let chars = -1;
    while (this.chunks.length > 0 && first.length + this.chunks[0]!.length <= this.maxWritePoints) {
      if (chars < 0) chars = textLength(first);
      const next = this.chunks[0]!;
      const more = textLength(next);
      if (chars + more > this.maxWriteBytes) break;
      chars += more;
      this.chunks.shift();
      for (let i = 0; i < next.length; i++) first.push(next[i]!);
    }
    return first;
  }

  /** Moves every chunk in memory to the spool (behind what is there). Stops at an I/O error. */
  private moveToSpool(): void {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      if (chunk.length > 0 && !this.toSpool(chunk)) break;
      this.chunks.shift();
      this.left(chunk.length, chunk);
    }
    this.stats.buffered = this.size;
  }

  private toSpool(points: readonly EncodedPoint[]): boolean {
    try {
      this.spool!.append(points);
      this.stats.pointsSpooled += points.length;
      this.observer.spooled?.(points.length);
      return true;
    } catch (err) {
      if (!this.loggedReasons.has('spool-io')) {
        this.loggedReasons.add('spool-io');
        this.logger?.error(
          { err: err instanceof Error ? err.message : String(err), dir: this.spool!.dir },
          'cannot write the spool; keeping points in memory (logged once)',
        );
      }
      return false;
    }
  }

  /**
   * Writes the oldest batch: the spool's head while the spool holds points, else the oldest chunk.
   * Returns false when a retryable failure left it waiting (in the spool when there is one).
   */
  private async writeOne(flushing: boolean): Promise<boolean> {
    const fromSpool = this.spooling;
    let batch: EncodedPoint[] | undefined;
    if (fromSpool) {
      this.moveToSpool();
      batch =
        this.spool!.peek((point) => this.store.encode(point), this.maxWritePoints, this.maxWriteBytes) ??
        undefined;
    } else {
      batch = this.takeChunks();
      if (batch && batch.length > 0) this.held = batch;
    }
    if (!batch || batch.length === 0) return true;
    const started = performance.now();
    try {
      await this.store.writeEncoded(batch);
      const seconds = (performance.now() - started) / 1000;
      const rate = batch.length / Math.max(seconds, 0.001);
      this.writeRate = this.writeRate === null ? rate : 0.8 * this.writeRate + 0.2 * rate;
      if (fromSpool) this.spool!.ack();
      else this.left(batch.length, batch);
      this.stats.buffered = this.size;
      this.stats.batchesOk++;
      this.stats.pointsWritten += batch.length;
      this.observer.batch?.('ok', batch.length, seconds);
      if (this.stats.consecutiveFailures > 0) {
        this.logger?.info({ afterFailures: this.stats.consecutiveFailures }, 'writes succeed again');
      }
      this.stats.consecutiveFailures = 0;
      this.retryAt = 0;
      return true;
    } catch (err) {
      const seconds = (performance.now() - started) / 1000;
      const retryable = !(err instanceof StoreWriteError) || err.retryable;
      const message = err instanceof Error ? err.message : String(err);
      if (retryable) {
        if (!fromSpool) {
          // To the spool when there is one (new batches then queue behind it); else back to the
          // front of memory (the overflow bound may have shrunk the buffer meanwhile).
          if (this.spool && this.toSpool(batch)) this.left(batch.length, batch);
          else this.chunks.unshift(batch);
          this.stats.buffered = this.size;
        }
        this.stats.batchesRetried++;
        this.stats.consecutiveFailures++;
        this.observer.batch?.('retry', batch.length, seconds);
        const delay = backoffDelay(this.stats.consecutiveFailures - 1, {
          initialMs: this.initialBackoffMs,
          maxMs: this.maxBackoffMs,
          random: this.random,
        });
        this.retryAt = Date.now() + delay;
        if (this.stats.consecutiveFailures === 1) {
          this.logger?.warn(
            { err: message, points: batch.length, spool: this.spool !== null },
            this.spool
              ? 'write failed; spooling to disk and retrying with backoff'
              : 'write failed; retrying with backoff',
          );
        } else {
          this.logger?.debug(
            { err: message, delay, failures: this.stats.consecutiveFailures },
            'write retry',
          );
        }
        if (!flushing && !this.stopped) {
          if (this.retryTimer) clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.kick(true);
          }, delay);
          this.retryTimer.unref();
        }
        return false;
      }
      // Not retryable: InfluxDB refused the batch (or part of it). Drop and count, never loop.
      if (fromSpool) this.spool!.ack();
      else this.left(batch.length, batch);
      this.stats.buffered = this.size;
      this.stats.batchesRejected++;
      const rejected = err instanceof StoreWriteError && err.dropped !== null ? err.dropped : batch.length;
      this.stats.pointsRejected += rejected;
      this.stats.pointsWritten += batch.length - rejected;
      this.observer.batch?.('rejected', batch.length, seconds);
      this.observer.dropped?.('rejected', rejected);
      const key = reasonKey(message);
      if (!this.loggedReasons.has(key) && this.loggedReasons.size < 100) {
        this.loggedReasons.add(key);
        this.logger?.error(
          { err: message, points: batch.length, rejected },
          'storage refused a batch; dropped, not retried (this reason is logged once; see /metrics)',
        );
      } else {
        this.logger?.debug({ err: message, rejected }, 'storage refused a batch');
      }
      return true;
    }
  }
}

function textLength(points: readonly EncodedPoint[]): number {
  let n = 0;
  for (let i = 0; i < points.length; i++) n += points[i]!.length;
  return n;
}

/** Groups refusal messages that differ only by numbers/quoted names (one log line per kind). */
function reasonKey(message: string): string {
  return message
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, 'N')
    .slice(0, 200);
}
