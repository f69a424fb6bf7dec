import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type DropReason, RECORD_HEADER_BYTES, SegmentedLog } from '@gpupulse/node';
import type { Logger } from 'pino';
import { type EncodedPoint, encodedRecord, type MetricPoint } from './metric-store.ts';

export interface DiskSpoolOptions {
  /** Directory of the segment files (created on first use). */
  dir: string;
  /** Most bytes on disk; beyond it the oldest segments are deleted and their points counted (default 1 GiB). */
  maxBytes?: number;
  /** A segment is closed and a new one started beyond this size (default 16 MiB, at most maxBytes / 4). */
  segmentBytes?: number;
  logger?: Logger;
  /** Points lost: `spool_full` (oldest segment deleted to make room), `spool_corrupt` (unreadable record dropped). */
  onDrop?(reason: 'spool_full' | 'spool_corrupt', points: number): void;
}

export interface SpoolStats {
  bytes: number;
  segments: number;
  /** Records (batches) waiting. */
  records: number;
  /** Points waiting. */
  points: number;
  pointsDroppedFull: number;
  /** Torn or corrupt records found (and skipped) when the spool was opened. */
  tornRecords: number;
}

/**
 * A bounded disk spool of write batches, drained in order (FIFO), on the shared segmented log of
 * @gpupulse/node (the agent's spool uses the same one): one record per batch, `count` = its
 * points, payload = the batch as a JSON array of the store's encoded points (`EncodedPoint`:
 * line protocol for InfluxDB). Records of servers that spooled points as JSON objects are read too
 * (encoded when read).
 *
 * Appends go to the newest segment; `peek` reads the oldest batch and `ack` removes it (the
 * log's ack file: after a restart, acked batches are not written again — exactly once). When the
 * spool would exceed `maxBytes`, the oldest segments are deleted and their points counted as
 * dropped. A torn or corrupt record found on open (a crash mid-write) ends its segment's scan,
 * counted in `tornRecords`. A full file system throws from `append`: the write buffer keeps the
 * batch in memory then.
 *
 * A spool of the earlier server format (`seg-<n>.spool`) is moved into the log when it is opened,
 * so an upgrade loses no unwritten point.
 */
export class DiskSpool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  private readonly logger: Logger | undefined;
  private readonly onDrop: DiskSpoolOptions['onDrop'];
  private log: SegmentedLog | null = null;
  private opened = false;
  /** The records of the batch `peek` returned. */
  private peeked: number[] | null = null;
  private pointsDroppedFull = 0;
  private tornRecords = 0;
  /** Bytes and points appended since open (for `bytesPerPoint`). */
  private appendedBytes = 0;
  private appendedPoints = 0;

  constructor(opts: DiskSpoolOptions) {
    this.dir = opts.dir;
    this.maxBytes = Math.max(1024, opts.maxBytes ?? 1024 ** 3);
    this.segmentBytes = Math.max(512, Math.min(opts.segmentBytes ?? 16 * 1024 ** 2, this.maxBytes / 4));
    this.logger = opts.logger;
    this.onDrop = opts.onDrop;
  }

  /** Figures for /metrics (opens the spool on first use). */
  get stats(): Readonly<SpoolStats> {
    this.open();
    const log = this.log;
    return {
      bytes: log?.bytes ?? 0,
      segments: log?.segmentCount ?? 0,
      records: log?.records ?? 0,
      points: log?.count ?? 0,
      pointsDroppedFull: this.pointsDroppedFull,
      tornRecords: this.tornRecords,
    };
  }

  /**
   * Disk bytes a point takes in the spool (record header included), from what was appended since
   * open; before the first append, the files' bytes per waiting point (or 512 when empty). Not
   * `bytes / points`: a segment's file keeps its acked records' bytes until the whole segment is
   * done, so near the end of a drain that ratio grows without bound.
   */
  get bytesPerPoint(): number {
    if (this.appendedPoints > 0) return this.appendedBytes / this.appendedPoints;
    const st = this.stats;
    return st.points > 0 ? st.bytes / st.points : 512;
  }

  /** True when nothing waits. Opens (scans) the directory on first call if it exists. */
  get empty(): boolean {
    this.open();
    return (this.log?.records ?? 0) === 0;
  }

  /** Scans an existing spool directory (idempotent). Does not create the directory. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    if (!existsSync(this.dir)) return; // no spool yet: created by the first append
    this.openLog();
  }

  private openLog(): SegmentedLog {
    if (this.log) return this.log;
    const log = new SegmentedLog({
      dir: this.dir,
      maxBytes: this.maxBytes,
      segmentBytes: this.segmentBytes,
      onDiskFull: 'throw',
      logger: this.logger,
      onDrop: (reason, _records, points) => this.dropped(reason, points),
    });
    this.log = log;
    this.tornRecords += log.opened.tornRecords;
    this.tornRecords += migrateLegacySpool(this.dir, log, this.logger);
    if (log.records > 0) {
      this.logger?.warn(
        { dir: this.dir, points: log.count, bytes: log.bytes },
        'spool holds unwritten points from an earlier run; draining them first',
      );
    }
    return log;
  }

  private dropped(reason: DropReason, points: number): void {
    if (reason === 'unreadable') {
      this.onDrop?.('spool_corrupt', points);
      return;
    }
    this.pointsDroppedFull += points;
    this.onDrop?.('spool_full', points);
    this.logger?.error(
      { maxBytes: this.maxBytes, points, reason },
      'spool full: deleted the oldest segment (counted in /metrics)',
    );
  }

  /** Appends one batch. Throws on I/O errors (disk full …); the caller keeps the batch then. */
  append(points: readonly EncodedPoint[]): void {
    if (points.length === 0) return;
    this.open();
    const log = this.openLog();
    const payload = Buffer.from(JSON.stringify(points), 'utf8');
    log.append(payload, { count: points.length });
    this.appendedBytes += payload.length + RECORD_HEADER_BYTES;
    this.appendedPoints += points.length;
  }

  /**
   * The oldest waiting batch, or null: its oldest record and the records after it while the
   * points stay within `maxPoints` and the records' bytes within `maxBytes` (one write for several
   * records when storage has fallen behind).
   * An unreadable record met here is dropped and counted. `encode`: the store's, for a record of
   * points spooled as objects by an earlier version.
   */
  peek(
    encode: (point: MetricPoint) => EncodedPoint | null,
    maxPoints = 0,
    maxBytes = Number.POSITIVE_INFINITY,
  ): EncodedPoint[] | null {
    this.open();
    const log = this.log;
    if (!log) return null;
    let batch: EncodedPoint[] | null = null;
    const ids: number[] = [];
    let bytes = 0;
    for (const rec of log.live()) {
      if (batch !== null && batch.length + rec.count > maxPoints) break;
      const buf = log.read(rec.id); // null: unreadable, dropped and counted by the log
      if (!buf) continue;
      if (batch !== null && bytes + buf.length > maxBytes) break;
      bytes += buf.length;
      let points: EncodedPoint[];
      try {
        const items: unknown = JSON.parse(buf.toString('utf8'));
        if (!Array.isArray(items)) throw new Error('not a batch');
        points = encodedRecord(items, encode);
      } catch {
        this.logger?.error({ dir: this.dir, id: rec.id }, 'corrupt spool record; dropped it');
        log.remove([rec.id]);
        this.onDrop?.('spool_corrupt', rec.count);
        continue;
      }
      ids.push(rec.id);
      if (batch === null) batch = points;
      else for (const p of points) batch.push(p);
    }
    this.peeked = ids.length > 0 ? ids : null;
    return batch;
  }

  /** Removes the batch `peek()` returned (it was written or refused for good). */
  ack(): void {
    const log = this.log;
    if (!log) return;
    // The records peek() returned, even when appends arrived since; those the size bound dropped
    // meanwhile (counted then) are gone already, and no other record is acked in their place.
    const first = log.first()?.id;
    const ids = this.peeked ?? (first === undefined ? [] : [first]);
    this.peeked = null;
    if (ids.length > 0) log.remove(ids);
  }

  /** Closes file descriptors (the files stay). */
  close(): void {
    this.log?.close();
  }
}

// ---- the spool format of servers before @gpupulse/node (read once, to migrate) ----

const LEGACY_SEGMENT = /^seg-(\d{12})\.spool$/;
const LEGACY_HEADER = 12;

/**
 * Reads a segment of the earlier server format — records [u32 BE length][u32 BE crc32(payload)]
 * [u32 BE points][JSON of MetricPoint[]] — up to the first torn or corrupt record.
 */
export function scanLegacySegment(buf: Buffer): {
  records: { points: number; payload: Buffer }[];
  torn: boolean;
} {
  const records: { points: number; payload: Buffer }[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < LEGACY_HEADER) return { records, torn: true };
    const len = buf.readUInt32BE(off);
    if (off + LEGACY_HEADER + len > buf.length) return { records, torn: true };
    const payload = buf.subarray(off + LEGACY_HEADER, off + LEGACY_HEADER + len);
    if (crc32(payload) !== buf.readUInt32BE(off + 4)) return { records, torn: true };
    records.push({ points: buf.readUInt32BE(off + 8), payload });
    off += LEGACY_HEADER + len;
  }
  return { records, torn: false };
}

/**
 * Moves the batches of an earlier server's spool in `dir` into `log` (in order), then deletes the
 * old files. If appending fails (a full disk), the old files stay and are moved on a later start;
 * what was moved already is then written twice, which InfluxDB absorbs (same series and time).
 * Returns the torn records found.
 */
function migrateLegacySpool(dir: string, log: SegmentedLog, logger?: Logger): number {
  const names = readdirSync(dir)
    .filter((n) => LEGACY_SEGMENT.test(n))
    .sort();
  if (names.length === 0) return 0;
  let torn = 0;
  let points = 0;
  for (const name of names) {
    const file = join(dir, name);
    const scan = scanLegacySegment(readFileSync(file));
    if (scan.torn) {
      torn++;
      logger?.warn({ file }, 'torn or corrupt spool record (crash while writing?); skipped');
    }
    try {
      for (const r of scan.records) {
        log.append(r.payload, { count: r.points });
        points += r.points;
      }
    } catch (err) {
      logger?.error(
        { err: err instanceof Error ? err.message : String(err), file },
        'cannot move the earlier spool format into the current one; trying again on the next start',
      );
      return torn;
    }
    unlinkSync(file);
  }
  logger?.info(
    { dir, points, segments: names.length },
    'moved the spool of an earlier server version to the current format',
  );
  return torn;
}
