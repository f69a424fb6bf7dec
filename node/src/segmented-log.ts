// A bounded, append-only, segmented log of opaque records on local disk — the one spool format of
// gpupulse (the agent's unacked samples and the server's unwritten points both live in it).
//
// Directory layout:
//   log-<16-digit id of the segment's first record>.seg   records (append only)
//   log-<…>.ack                                          ids removed (acked or refused), one a line
//   next-id                                              the next id (only with persistNextId)
//
// A segment file starts with the 8-byte magic `GPLOG01\n`, then records:
//   [u32 LE payload length][u32 LE CRC-32 of bytes 8…end][f64 LE id][f64 LE ts][u32 LE count][payload]
// `id` orders records (strictly increasing), `ts` drives the age bound, `count` is what a drop of
// the record loses (1 sample, N points). A torn or corrupt record (a crash mid-write, a flipped
// bit) ends the scan of its segment when the log is opened: counted, logged, never fatal.
//
// Records leave the log when removed (`remove`: acked) or dropped (bounds: size, age, a full file
// system). A segment is deleted once none of its records is live. All I/O is synchronous: one
// append is one write(); order is kept trivially.
import {
  appendFileSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** First bytes of every segment file (format version 1). */
export const SEGMENT_MAGIC = Buffer.from('GPLOG01\n', 'latin1');
export const RECORD_HEADER_BYTES = 28;
/** A record larger than this is corruption, not data. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const SEGMENT_RE = /^log-(\d{16})\.seg$/;

/**
 * Why records left the log without being removed by their owner: the size or age bound, a full
 * file system (the oldest segments), a full file system with nothing older left to drop (the new
 * record itself: `no room`), a record that could not be read back.
 */
export type DropReason = 'size' | 'age' | 'disk full' | 'no room' | 'unreadable';

/** The minimal logger the log needs (pino's Logger fits). */
export interface LogLike {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SegmentedLogOptions {
  dir: string;
  /** Bound on the bytes of all segment files; the oldest segments are dropped to stay under it. */
  maxBytes: number;
  /** Records older than this (by their ts) are dropped (default: no age bound). */
  maxAgeMs?: number;
  /** Size at which a new segment starts (default maxBytes / 16, between 4 KiB and 16 MiB). */
  segmentBytes?: number;
  /**
   * Remember the next id in `next-id` so that ids continue across restarts even when every record
   * was removed (the agent's sample sequence numbers). Default false.
   */
  persistNextId?: boolean;
  /**
   * A full file system (ENOSPC, EDQUOT): `'drop-oldest'` (default) drops the oldest segments and
   * tries again, dropping the new record when nothing older is left; `'throw'` leaves the log as
   * it was and throws, so the caller keeps the record.
   */
  onDiskFull?: 'drop-oldest' | 'throw';
  /** Records that left without `remove`: how many, and the sum of their counts. */
  onDrop?(reason: DropReason, records: number, count: number): void;
  logger?: LogLike;
  now?: () => number;
}

export interface RecordMeta {
  readonly id: number;
  readonly ts: number;
  readonly count: number;
}

export interface LogOpenReport {
  segments: number;
  records: number;
  count: number;
  bytes: number;
  tornRecords: number;
  nextId: number;
}

interface Entry extends RecordMeta {
  offset: number;
  length: number;
  done: boolean;
}

interface Segment {
  name: string;
  path: string;
  ackPath: string;
  entries: Entry[];
  /** Index of the first entry that may still be live. */
  head: number;
  live: number;
  liveCount: number;
  bytes: number;
  lastTs: number;
}

const isDiskFull = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
};

/** Encodes one record (header + payload). */
export function encodeRecord(meta: RecordMeta, payload: Uint8Array): Buffer {
  const rec = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  rec.writeUInt32LE(payload.length, 0);
  rec.writeDoubleLE(meta.id, 8);
  rec.writeDoubleLE(meta.ts, 16);
  rec.writeUInt32LE(meta.count, 24);
  rec.set(payload, RECORD_HEADER_BYTES);
  rec.writeUInt32LE(crc32(rec.subarray(8)), 4);
  return rec;
}

export interface ScannedRecord extends RecordMeta {
  /** Offset of the payload in the segment file. */
  offset: number;
  length: number;
}

/** Scans a segment file's bytes: its valid records, and whether it ended in a torn/corrupt record. */
export function scanSegment(buf: Buffer): { records: ScannedRecord[]; torn: boolean; validBytes: number } {
  const records: ScannedRecord[] = [];
  if (buf.length < SEGMENT_MAGIC.length || !buf.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC))
    return { records, torn: buf.length > 0, validBytes: 0 };
  let off = SEGMENT_MAGIC.length;
  while (off < buf.length) {
    if (buf.length - off < RECORD_HEADER_BYTES) return { records, torn: true, validBytes: off };
    const len = buf.readUInt32LE(off);
    if (len > MAX_RECORD_BYTES || off + RECORD_HEADER_BYTES + len > buf.length)
      return { records, torn: true, validBytes: off };
    if (crc32(buf.subarray(off + 8, off + RECORD_HEADER_BYTES + len)) !== buf.readUInt32LE(off + 4))
      return { records, torn: true, validBytes: off };
    records.push({
      id: buf.readDoubleLE(off + 8),
      ts: buf.readDoubleLE(off + 16),
      count: buf.readUInt32LE(off + 24),
      offset: off + RECORD_HEADER_BYTES,
      length: len,
    });
    off += RECORD_HEADER_BYTES + len;
  }
  return { records, torn: false, validBytes: off };
}

export class SegmentedLog {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly segmentBytes: number;
  /** What was found when the log was opened. */
  readonly opened: LogOpenReport;
  private readonly opts: SegmentedLogOptions;
  private readonly now: () => number;
  private readonly nextIdPath: string;
  private readonly segments: Segment[] = [];
  private readonly index = new Map<number, { seg: Segment; entry: Entry }>();
  private active: Segment | null = null;
  /** Size at which the active segment is closed (`segmentLimit()` when it was started). */
  private activeLimit = 0;
  private writeFd: number | null = null;
  private readFd: { seg: Segment; fd: number } | null = null;
  private liveRecords = 0;
  private liveCount = 0;
  private totalBytes = 0;
  private droppedRecords = 0;
  private droppedCount = 0;
  private lastId: number | null = null;
  private next = 0;

  constructor(options: SegmentedLogOptions) {
    this.opts = options;
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.maxAgeMs = options.maxAgeMs ?? Number.POSITIVE_INFINITY;
    this.segmentBytes =
      options.segmentBytes ?? Math.max(4096, Math.min(16 * 1024 * 1024, Math.floor(this.maxBytes / 16)));
    this.now = options.now ?? Date.now;
    this.nextIdPath = join(this.dir, 'next-id');
    mkdirSync(this.dir, { recursive: true });
    this.opened = this.load();
  }

  private load(): LogOpenReport {
    let torn = 0;
    let next = 0;
    if (this.opts.persistNextId && existsSync(this.nextIdPath)) {
      const saved = Number(readFileSync(this.nextIdPath, 'utf8').trim());
      if (Number.isSafeInteger(saved) && saved >= 0) next = saved;
    }
    const names = readdirSync(this.dir)
      .filter((n) => SEGMENT_RE.test(n))
      .sort();
    for (const name of names) {
      const path = join(this.dir, name);
      const ackPath = path.replace(/\.seg$/, '.ack');
      const buf = readFileSync(path);
      const scan = scanSegment(buf);
      if (scan.torn) {
        torn++;
        this.opts.logger?.warn(
          { segment: name, validBytes: scan.validBytes, fileBytes: buf.length },
          'spool segment ends in a torn or corrupt record; skipped the rest of it',
        );
      }
      const removed = new Set<number>();
      if (existsSync(ackPath)) {
        for (const line of readFileSync(ackPath, 'utf8').split('\n')) {
          const n = Number(line);
          if (line !== '' && Number.isFinite(n)) removed.add(n);
        }
      }
      const seg = this.newSegment(name, path, ackPath);
      seg.bytes = buf.length;
      for (const r of scan.records) {
        if (r.id >= next) next = r.id + 1;
        const entry: Entry = { ...r, done: false };
        seg.entries.push(entry);
        seg.lastTs = Math.max(seg.lastTs, r.ts);
        if (removed.has(r.id) || this.index.has(r.id)) entry.done = true;
        else {
          seg.live++;
          seg.liveCount += r.count;
          this.index.set(r.id, { seg, entry });
        }
      }
      if (seg.live === 0) {
        this.unlinkFiles(seg);
        continue;
      }
      this.advanceHead(seg);
      this.segments.push(seg);
      this.totalBytes += seg.bytes;
      this.liveRecords += seg.live;
      this.liveCount += seg.liveCount;
      const last = seg.entries[seg.entries.length - 1];
      if (last) this.lastId = last.id;
    }
    this.next = next;
    this.enforceBounds(0);
    return {
      segments: this.segments.length,
      records: this.liveRecords,
      count: this.liveCount,
      bytes: this.totalBytes,
      tornRecords: torn,
      nextId: next,
    };
  }

  private newSegment(name: string, path: string, ackPath: string): Segment {
    return { name, path, ackPath, entries: [], head: 0, live: 0, liveCount: 0, bytes: 0, lastTs: 0 };
  }

  /** The id the next record gets when `append` is not given one (continues across restarts). */
  get nextId(): number {
    return this.next;
  }

  /** Live records. */
  get records(): number {
    return this.liveRecords;
  }

  /** Sum of the live records' counts. */
  get count(): number {
    return this.liveCount;
  }

  /** Bytes of all segment files. */
  get bytes(): number {
    return this.totalBytes;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Records dropped since open (bounds, full disk, unreadable), and the sum of their counts. */
  get dropped(): { records: number; count: number } {
    return { records: this.droppedRecords, count: this.droppedCount };
  }

  /** The newest live record's id, if any. */
  get newestId(): number | undefined {
    return this.lastId !== null && this.index.has(this.lastId) ? this.lastId : undefined;
  }

  /** Ids continue at least from `id` (the next id of an earlier spool being migrated). */
  advanceNextId(id: number): void {
    if (!Number.isSafeInteger(id) || id <= this.next) return;
    this.next = id;
    if (this.opts.persistNextId) this.persistNext();
  }

  has(id: number): boolean {
    return this.index.has(id);
  }

  /** Live records, oldest first (a snapshot of the metadata: safe to `remove` while iterating). */
  *live(): Generator<RecordMeta> {
    for (const seg of [...this.segments]) {
      for (let i = seg.head; i < seg.entries.length; i++) {
        const e = seg.entries[i] as Entry;
        if (!e.done) yield e;
      }
    }
  }

  /** The oldest live record, if any. */
  first(): RecordMeta | undefined {
    for (const seg of this.segments) {
      this.advanceHead(seg);
      const e = seg.entries[seg.head];
      if (e && !e.done) return e;
    }
    return undefined;
  }

  /**
   * Appends a record. `id` defaults to `nextId`; a given id must not be below it (ids increase).
   * Returns the id, or null when a full file system dropped the record (counted).
   */
  append(payload: Uint8Array, meta: { id?: number; ts?: number; count?: number } = {}): number | null {
    const id = meta.id ?? this.next;
    if (!Number.isSafeInteger(id) || id < this.next)
      throw new Error(`segmented log: id ${id} is not above the last one (${this.next - 1})`);
    if (payload.length + RECORD_HEADER_BYTES > MAX_RECORD_BYTES)
      throw new Error('record too large for the spool');
    const full: RecordMeta = { id, ts: meta.ts ?? this.now(), count: meta.count ?? 1 };
    const rec = encodeRecord(full, payload);
    this.enforceBounds(rec.length);
    for (;;) {
      try {
        this.write(rec, full, payload.length);
        return id;
      } catch (err) {
        if (!isDiskFull(err) || this.opts.onDiskFull === 'throw') throw err;
        if (this.liveRecords === 0) {
          this.countDrop('no room', 1, full.count);
          return null;
        }
        this.dropOldest('disk full');
      }
    }
  }

  private write(rec: Buffer, meta: RecordMeta, payloadBytes: number): void {
    if (!this.active || this.writeFd === null || this.active.bytes + rec.length > this.activeLimit)
      this.rotate(meta.id);
    const seg = this.active as Segment;
    const fd = this.writeFd as number;
    let written = 0;
    try {
      // At the record's own offset, not the file position: a short write (full disk) moves the
      // position past the torn bytes cut off below, and the next record must start where this
      // one would have.
      written = writeSync(fd, rec, 0, rec.length, seg.bytes);
    } catch (err) {
      if (seg.entries.length === 0) this.discardEmpty(seg);
      throw err;
    }
    if (written !== rec.length) {
      // a short write on a full disk: cut the torn record off again
      ftruncateSync(fd, seg.bytes);
      if (seg.entries.length === 0) this.discardEmpty(seg);
      throw Object.assign(new Error('ENOSPC: short write to the spool'), { code: 'ENOSPC' });
    }
    const entry: Entry = {
      ...meta,
      offset: seg.bytes + RECORD_HEADER_BYTES,
      length: payloadBytes,
      done: false,
    };
    seg.entries.push(entry);
    seg.bytes += rec.length;
    seg.live++;
    seg.liveCount += meta.count;
    seg.lastTs = Math.max(seg.lastTs, meta.ts);
    this.totalBytes += rec.length;
    this.liveRecords++;
    this.liveCount += meta.count;
    this.index.set(meta.id, { seg, entry });
    this.lastId = meta.id;
    this.next = meta.id + 1;
    if (this.opts.persistNextId) this.persistNext();
  }

  private persistNext(): void {
    const tmp = `${this.nextIdPath}.tmp`;
    try {
      writeFileSync(tmp, String(this.next));
      renameSync(tmp, this.nextIdPath);
    } catch (err) {
      // disk full: the records carry their ids, open() continues after the newest of them
      if (!isDiskFull(err)) throw err;
    }
  }

  /**
   * The size of the segment being started: `segmentBytes`, but at most an eighth of what the file
   * system has room for (the log's own bytes + the space left). Space comes back only by deleting
   * whole segments, so on a small or nearly full file system one large segment would make the
   * first ENOSPC drop everything the log holds; with eighths it drops the oldest eighth.
   */
  private segmentLimit(): number {
    try {
      const fs = statfsSync(this.dir);
      const room = this.totalBytes + fs.bavail * fs.bsize;
      return Math.min(this.segmentBytes, Math.max(4096, Math.floor(room / 8)));
    } catch {
      return this.segmentBytes;
    }
  }

  private rotate(firstId: number): void {
    this.closeWriteFd();
    this.activeLimit = this.segmentLimit();
    const name = `log-${String(firstId).padStart(16, '0')}.seg`;
    const path = join(this.dir, name);
    const seg = this.newSegment(name, path, path.replace(/\.seg$/, '.ack'));
    // 'w': a leftover file of that name (a crash before its first record) is replaced
    const fd = openSync(path, 'w');
    try {
      const n = writeSync(fd, SEGMENT_MAGIC);
      if (n !== SEGMENT_MAGIC.length)
        throw Object.assign(new Error('ENOSPC: short write to the spool'), { code: 'ENOSPC' });
    } catch (err) {
      closeSync(fd);
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
      throw err;
    }
    seg.bytes = SEGMENT_MAGIC.length;
    this.writeFd = fd;
    this.segments.push(seg);
    this.totalBytes += seg.bytes;
    this.active = seg;
  }

  /** A segment that never got a record (its first write failed). */
  private discardEmpty(seg: Segment): void {
    this.removeSegment(seg);
  }

  /**
   * Reads a live record's payload. An unreadable record (the file changed under us) is dropped,
   * counted and logged; null then.
   */
  read(id: number): Buffer | null {
    const hit = this.index.get(id);
    if (!hit) return null;
    const { seg, entry } = hit;
    const buf = Buffer.allocUnsafe(entry.length);
    try {
      if (this.readFd?.seg !== seg) {
        if (this.readFd) closeSync(this.readFd.fd);
        this.readFd = null;
        this.readFd = { seg, fd: openSync(seg.path, 'r') };
      }
      let got = 0;
      while (got < entry.length) {
        const n = readSync(this.readFd.fd, buf, got, entry.length - got, entry.offset + got);
        if (n === 0) break;
        got += n;
      }
      if (got === entry.length) return buf;
    } catch {
      // fall through: unreadable
    }
    this.opts.logger?.error({ segment: seg.name, id }, 'spool record unreadable; dropped it');
    this.removeEntries([id]);
    this.countDrop('unreadable', 1, entry.count);
    return null;
  }

  /** Removes records (acked, or refused for good); returns how many were live. */
  remove(ids: Iterable<number>): number {
    return this.removeEntries(ids);
  }

  private removeEntries(ids: Iterable<number>): number {
    let n = 0;
    const bySeg = new Map<Segment, number[]>();
    for (const id of ids) {
      const hit = this.index.get(id);
      if (!hit) continue;
      this.index.delete(id);
      hit.entry.done = true;
      hit.seg.live--;
      hit.seg.liveCount -= hit.entry.count;
      this.liveRecords--;
      this.liveCount -= hit.entry.count;
      n++;
      const list = bySeg.get(hit.seg);
      if (list) list.push(id);
      else bySeg.set(hit.seg, [id]);
    }
    for (const [seg, list] of bySeg) {
      if (seg.live === 0) {
        this.removeSegment(seg);
      } else {
        this.advanceHead(seg);
        try {
          appendFileSync(seg.ackPath, `${list.join('\n')}\n`);
        } catch (err) {
          // A full disk: the removal holds in memory; after a restart these records are sent
          // again (the receiver is idempotent per id/series and time).
          if (!isDiskFull(err)) throw err;
        }
      }
    }
    return n;
  }

  private advanceHead(seg: Segment): void {
    while (seg.head < seg.entries.length && seg.entries[seg.head]?.done) seg.head++;
  }

  private closeWriteFd(): void {
    if (this.writeFd !== null) closeSync(this.writeFd);
    this.writeFd = null;
  }

  private unlinkFiles(seg: Segment): void {
    for (const p of [seg.path, seg.ackPath]) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
  }

  private removeSegment(seg: Segment): void {
    const i = this.segments.indexOf(seg);
    if (i >= 0) this.segments.splice(i, 1);
    if (this.active === seg) {
      this.active = null;
      this.closeWriteFd();
    }
    if (this.readFd?.seg === seg) {
      closeSync(this.readFd.fd);
      this.readFd = null;
    }
    this.totalBytes -= seg.bytes;
    this.unlinkFiles(seg);
  }

  private countDrop(reason: DropReason, records: number, count: number): void {
    this.droppedRecords += records;
    this.droppedCount += count;
    this.opts.onDrop?.(reason, records, count);
  }

  /** Drops the oldest segment; its live records are counted as dropped. */
  private dropOldest(reason: DropReason): void {
    const seg = this.segments[0];
    if (!seg) return;
    let records = 0;
    for (const e of seg.entries) {
      if (e.done) continue;
      e.done = true;
      this.index.delete(e.id);
      records++;
    }
    const count = seg.liveCount;
    this.liveRecords -= records;
    this.liveCount -= count;
    seg.live = 0;
    seg.liveCount = 0;
    this.removeSegment(seg);
    if (records > 0) this.countDrop(reason, records, count);
  }

  /** Makes room for `incoming` bytes and drops records past the age bound. */
  private enforceBounds(incoming: number): void {
    while (this.segments.length > 0 && this.totalBytes + incoming > this.maxBytes) this.dropOldest('size');
    if (Number.isFinite(this.maxAgeMs)) {
      const cutoff = this.now() - this.maxAgeMs;
      while (this.segments.length > 0 && (this.segments[0] as Segment).lastTs < cutoff) {
        const seg = this.segments[0] as Segment;
        if (seg === this.active && seg.entries.length === 0) break;
        this.dropOldest('age');
      }
    }
  }

  /** Closes file descriptors (the files stay). */
  close(): void {
    this.closeWriteFd();
    if (this.readFd) closeSync(this.readFd.fd);
    this.readFd = null;
    this.active = null;
  }
}
