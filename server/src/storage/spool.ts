import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import type { MetricPoint } from './metric-store.ts';

export interface DiskSpoolOptions {
  /** Directory of the segment files (created on first use). */
  dir: string;
  /** Most bytes on disk; beyond it the oldest segments are deleted and their points counted (default 1 GiB). */
  maxBytes?: number;
  /** A segment is closed and a new one started beyond this size (default 16 MiB, at most maxBytes / 4). */
  segmentBytes?: number;
  logger?: Logger;
  /** Points lost: `spool_full` (oldest segment deleted to make room), `spool_corrupt` (torn/bad record skipped). */
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

interface Segment {
  seq: number;
  file: string;
  /** Bytes in the file (valid records only). */
  bytes: number;
  /** Offset of the next record to read. */
  readOffset: number;
  /** Records/points not yet read (acked). */
  records: number;
  points: number;
}

/** Record header: u32 payload length, u32 CRC-32 of the payload, u32 point count (big-endian). */
const HEADER = 12;
const MAGIC_NAME = /^seg-(\d{12})\.spool$/;
const MAX_RECORD = 256 * 1024 * 1024;

/**
 * A bounded, append-only disk spool of write batches, drained in order (FIFO).
 *
 * Segment files `seg-<n>.spool` under `dir` hold records `[len][crc32][points][JSON of MetricPoint[]]`.
 * Appends go to the newest segment; reads come from the oldest. When the spool would exceed
 * `maxBytes`, the oldest segments are deleted (their points counted as dropped). On open, every
 * segment is scanned: a torn or corrupt record (a crash mid-write) and anything after it in that
 * segment is cut off and counted. Fully read segments are deleted. The read position is not
 * persisted: after a restart, a partly drained segment is sent again from its start, which
 * InfluxDB absorbs (same series and timestamp overwrite the point).
 *
 * All I/O is synchronous: a batch is one `write()`; order is trivially kept.
 */
export class DiskSpool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  private readonly logger: Logger | undefined;
  private readonly onDrop: DiskSpoolOptions['onDrop'];
  private segments: Segment[] = [];
  private opened = false;
  private writeFd: number | null = null;
  private readFd: { seq: number; fd: number } | null = null;
  private nextSeq = 1;
  private readonly st: SpoolStats = {
    bytes: 0,
    segments: 0,
    records: 0,
    points: 0,
    pointsDroppedFull: 0,
    tornRecords: 0,
  };

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
    return this.st;
  }

  /** True when nothing waits. Opens (scans) the directory on first call if it exists. */
  get empty(): boolean {
    this.open();
    return this.st.records === 0;
  }

  /** Scans an existing spool directory (idempotent). Does not create the directory. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return; // no spool yet
    }
    const seqs = names
      .map((n) => MAGIC_NAME.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const seq of seqs) {
      const seg = this.scan(seq);
      if (seg.records === 0) {
        this.unlink(seg.file);
        continue;
      }
      this.segments.push(seg);
      this.nextSeq = seq + 1;
    }
    this.recount();
    if (this.st.records > 0) {
      this.logger?.warn(
        { dir: this.dir, points: this.st.points, bytes: this.st.bytes },
        'spool holds unwritten points from an earlier run; draining them first',
      );
    }
  }

  /** Appends one batch. Throws on I/O errors (disk full …); the caller keeps the batch then. */
  append(points: readonly MetricPoint[]): void {
    if (points.length === 0) return;
    this.open();
    const payload = Buffer.from(JSON.stringify(points), 'utf8');
    if (payload.length + HEADER > MAX_RECORD) throw new Error('batch too large for the spool');
    const record = Buffer.allocUnsafe(HEADER + payload.length);
    record.writeUInt32BE(payload.length, 0);
    record.writeUInt32BE(crc32(payload), 4);
    record.writeUInt32BE(points.length, 8);
    payload.copy(record, HEADER);

    // Make room first: delete the oldest segments while the new record would not fit.
    while (this.st.bytes + record.length > this.maxBytes && this.segments.length > 0) this.dropOldest();

    let tail = this.segments[this.segments.length - 1];
    if (!tail || this.writeFd === null || tail.bytes + record.length > this.segmentBytes) {
      tail = this.startSegment();
    }
    let off = 0;
    while (off < record.length) off += writeSync(this.writeFd!, record, off, record.length - off);
    tail.bytes += record.length;
    tail.records++;
    tail.points += points.length;
    this.recount();
  }

  /** The oldest waiting batch, or null. Corrupt records met here are skipped and counted. */
  peek(): MetricPoint[] | null {
    this.open();
    while (this.segments.length > 0) {
      const seg = this.segments[0]!;
      if (seg.records === 0 || seg.readOffset >= seg.bytes) {
        if (seg === this.segments[this.segments.length - 1]) return null;
        this.removeFirst();
        continue;
      }
      const fd = this.readFdOf(seg);
      const header = Buffer.alloc(HEADER);
      readSync(fd, header, 0, HEADER, seg.readOffset);
      const len = header.readUInt32BE(0);
      const payload = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, payload, got, len - got, seg.readOffset + HEADER + got);
        if (n === 0) break;
        got += n;
      }
      if (got === len && crc32(payload) === header.readUInt32BE(4)) {
        try {
          return JSON.parse(payload.toString('utf8')) as MetricPoint[];
        } catch {
          // fall through: corrupt
        }
      }
      // Changed under us (should not happen): skip the rest of this segment.
      this.logger?.error(
        { file: seg.file, offset: seg.readOffset },
        'corrupt spool record; skipping segment',
      );
      this.onDrop?.('spool_corrupt', seg.points);
      seg.records = 0;
      seg.points = 0;
      seg.readOffset = seg.bytes;
      this.recount();
    }
    return null;
  }

  /** Removes the batch `peek()` returned (it was written or refused for good). */
  ack(): void {
    const seg = this.segments[0];
    if (!seg || seg.records === 0) return;
    const fd = this.readFdOf(seg);
    const header = Buffer.alloc(HEADER);
    readSync(fd, header, 0, HEADER, seg.readOffset);
    seg.readOffset += HEADER + header.readUInt32BE(0);
    seg.records--;
    seg.points -= header.readUInt32BE(8);
    // A drained segment is deleted (the write segment too: the next append starts a new one).
    if (seg.records === 0) this.removeFirst();
    this.recount();
  }

  /** Closes file descriptors (the files stay). */
  close(): void {
    if (this.writeFd !== null) closeSync(this.writeFd);
    if (this.readFd) closeSync(this.readFd.fd);
    this.writeFd = null;
    this.readFd = null;
  }

  private fileOf(seq: number): string {
    return join(this.dir, `seg-${String(seq).padStart(12, '0')}.spool`);
  }

  private startSegment(): Segment {
    mkdirSync(this.dir, { recursive: true });
    if (this.writeFd !== null) closeSync(this.writeFd);
    const seq = this.nextSeq++;
    const file = this.fileOf(seq);
    this.writeFd = openSync(file, 'a');
    const seg: Segment = { seq, file, bytes: 0, readOffset: 0, records: 0, points: 0 };
    this.segments.push(seg);
    return seg;
  }

  private readFdOf(seg: Segment): number {
    if (this.readFd?.seq === seg.seq) return this.readFd.fd;
    if (this.readFd) closeSync(this.readFd.fd);
    this.readFd = { seq: seg.seq, fd: openSync(seg.file, 'r') };
    return this.readFd.fd;
  }

  private removeFirst(): void {
    const seg = this.segments.shift();
    if (!seg) return;
    if (this.readFd?.seq === seg.seq) {
      closeSync(this.readFd.fd);
      this.readFd = null;
    }
    if (this.segments.length === 0 && this.writeFd !== null) {
      closeSync(this.writeFd);
      this.writeFd = null;
    }
    this.unlink(seg.file);
  }

  private dropOldest(): void {
    const seg = this.segments[0]!;
    const lost = seg.points;
    this.removeFirst();
    this.st.pointsDroppedFull += lost;
    this.recount();
    if (lost > 0) {
      this.onDrop?.('spool_full', lost);
      this.logger?.error(
        { maxBytes: this.maxBytes, points: lost },
        'spool full: deleted the oldest segment (counted in /metrics)',
      );
    }
  }

  /** Reads a segment's records; cuts off a torn/corrupt tail. */
  private scan(seq: number): Segment {
    const file = this.fileOf(seq);
    const seg: Segment = { seq, file, bytes: 0, readOffset: 0, records: 0, points: 0 };
    const fd = openSync(file, 'r+');
    try {
      const size = fstatSync(fd).size;
      const header = Buffer.alloc(HEADER);
      let off = 0;
      while (off < size) {
        const ok = (() => {
          if (size - off < HEADER) return false;
          readSync(fd, header, 0, HEADER, off);
          const len = header.readUInt32BE(0);
          if (len > MAX_RECORD || off + HEADER + len > size) return false;
          const payload = Buffer.alloc(len);
          readSync(fd, payload, 0, len, off + HEADER);
          return crc32(payload) === header.readUInt32BE(4);
        })();
        if (!ok) {
          this.st.tornRecords++;
          this.logger?.warn(
            { file, offset: off, size },
            'torn or corrupt spool record (crash while writing?); skipped',
          );
          ftruncateSync(fd, off);
          break;
        }
        const len = header.readUInt32BE(0);
        seg.records++;
        seg.points += header.readUInt32BE(8);
        off += HEADER + len;
      }
      seg.bytes = off;
    } finally {
      closeSync(fd);
    }
    return seg;
  }

  private unlink(file: string): void {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }

  private recount(): void {
    let bytes = 0;
    let records = 0;
    let points = 0;
    for (const s of this.segments) {
      bytes += s.bytes;
      records += s.records;
      points += s.points;
    }
    this.st.bytes = bytes;
    this.st.segments = this.segments.length;
    this.st.records = records;
    this.st.points = points;
  }
}
