// A bounded disk spool of unacked samples (implements SampleQueue). Append-only segment files of
// framed records; a per-segment ack log; a segment is deleted once every record in it is acked
// (or dropped). Survives restarts and crashes: a torn or corrupt record ends the scan of its
// segment (counted, logged once, never fatal), and the next sequence number is persisted.
//
// Record: [u32 LE payload length][u32 LE crc32(seq, ts, payload)][f64 LE seq][f64 LE ts][payload]
// where payload is the sample as UTF-8 JSON. seq and ts sit in the header so opening a spool never
// parses JSON.
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
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Sample } from '@gpupulse/protocol';
import { DEFAULT_SPOOL_MAX_AGE_MS, DEFAULT_SPOOL_MAX_BYTES } from './config.ts';
import type { Logger } from './logger.ts';
import type { SampleQueue } from './queue.ts';

const HEADER_BYTES = 24;
/** A record larger than this is corruption, not a sample (the server refuses > 4 MiB messages). */
const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const SEG_RE = /^seg-(\d{16})\.log$/;
/** Samples kept in memory as well (the newest), so live sends and short replays never read disk. */
const CACHE_SIZE = 64;

export interface DiskSpoolOptions {
  dir: string;
  /** Bound on the bytes of all segment files (default 256 MiB). */
  maxBytes?: number;
  /** Records older than this (by sample ts) are dropped (default 24 h). */
  maxAgeMs?: number;
  /** Size at which a new segment starts (default maxBytes / 16, between 4 KiB and 16 MiB). */
  segmentBytes?: number;
  logger?: Logger;
  now?: () => number;
}

interface Entry {
  seq: number;
  ts: number;
  offset: number;
  length: number;
  done: boolean;
}

interface Segment {
  name: string;
  path: string;
  ackPath: string;
  entries: Entry[];
  /** Index of the first entry that may still be live (entries before it are done). */
  head: number;
  live: number;
  bytes: number;
  lastTs: number;
  fd: number | null;
}

export interface SpoolOpenReport {
  segments: number;
  samples: number;
  bytes: number;
  tornRecords: number;
  nextSeq: number;
}

function encodeRecord(sample: Sample, payload: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  rec.writeUInt32LE(payload.length, 0);
  rec.writeDoubleLE(sample.seq, 8);
  rec.writeDoubleLE(sample.ts, 16);
  payload.copy(rec, HEADER_BYTES);
  rec.writeUInt32LE(crc32(rec.subarray(8)), 4);
  return rec;
}

/** Scans a segment's bytes: the valid records, and whether it ended in a torn/corrupt record. */
export function scanSegment(buf: Buffer): { entries: Entry[]; torn: boolean; validBytes: number } {
  const entries: Entry[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER_BYTES) return { entries, torn: true, validBytes: off };
    const len = buf.readUInt32LE(off);
    if (len > MAX_RECORD_BYTES || off + HEADER_BYTES + len > buf.length)
      return { entries, torn: true, validBytes: off };
    const crc = buf.readUInt32LE(off + 4);
    if (crc32(buf.subarray(off + 8, off + HEADER_BYTES + len)) !== crc)
      return { entries, torn: true, validBytes: off };
    entries.push({
      seq: buf.readDoubleLE(off + 8),
      ts: buf.readDoubleLE(off + 16),
      offset: off + HEADER_BYTES,
      length: len,
      done: false,
    });
    off += HEADER_BYTES + len;
  }
  return { entries, torn: false, validBytes: off };
}

const isDiskFull = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
};

export class DiskSpool implements SampleQueue {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly segmentBytes: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private readonly seqPath: string;
  private readonly segments: Segment[] = [];
  private readonly index = new Map<number, { seg: Segment; entry: Entry }>();
  private readonly cache = new Map<number, Sample>();
  private active: Segment | null = null;
  private liveCount = 0;
  private totalBytes = 0;
  private droppedCount = 0;
  private lastSeq: number | null = null;
  private next = 0;
  /** Records found torn or corrupt when the spool was opened. */
  readonly opened: SpoolOpenReport;

  constructor(options: DiskSpoolOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_SPOOL_MAX_AGE_MS;
    this.segmentBytes =
      options.segmentBytes ?? Math.max(4096, Math.min(16 * 1024 * 1024, Math.floor(this.maxBytes / 16)));
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.seqPath = join(this.dir, 'next-seq');
    mkdirSync(this.dir, { recursive: true });
    this.opened = this.load();
  }

  /** The sequence number the next sample must carry (continues across restarts). */
  get nextSeq(): number {
    return this.next;
  }

  private load(): SpoolOpenReport {
    let torn = 0;
    const saved = existsSync(this.seqPath) ? Number(readFileSync(this.seqPath, 'utf8').trim()) : Number.NaN;
    let next = Number.isSafeInteger(saved) && saved >= 0 ? saved : 0;
    const names = readdirSync(this.dir)
      .filter((n) => SEG_RE.test(n))
      .sort();
    for (const name of names) {
      const path = join(this.dir, name);
      const ackPath = path.replace(/\.log$/, '.ack');
      const buf = readFileSync(path);
      const scan = scanSegment(buf);
      if (scan.torn) {
        torn++;
        this.log?.warn(
          { segment: name, validBytes: scan.validBytes, fileBytes: buf.length },
          'spool segment ends in a torn or corrupt record; skipped the rest of it',
        );
      }
      const acked = new Set<number>();
      if (existsSync(ackPath)) {
        for (const line of readFileSync(ackPath, 'utf8').split('\n')) {
          const n = Number(line);
          if (line !== '' && Number.isFinite(n)) acked.add(n);
        }
      }
      const seg: Segment = {
        name,
        path,
        ackPath,
        entries: scan.entries,
        head: 0,
        live: 0,
        bytes: buf.length,
        lastTs: 0,
        fd: null,
      };
      for (const e of seg.entries) {
        if (e.seq >= next) next = e.seq + 1;
        seg.lastTs = Math.max(seg.lastTs, e.ts);
        if (acked.has(e.seq) || this.index.has(e.seq)) e.done = true;
        else {
          seg.live++;
          this.index.set(e.seq, { seg, entry: e });
        }
      }
      if (seg.live === 0) {
        this.unlinkSegment(seg);
        continue;
      }
      this.advanceHead(seg);
      this.segments.push(seg);
      this.totalBytes += seg.bytes;
      this.liveCount += seg.live;
      const last = seg.entries[seg.entries.length - 1];
      if (last) this.lastSeq = last.seq;
    }
    this.next = next;
    this.enforceBounds();
    return {
      segments: this.segments.length,
      samples: this.liveCount,
      bytes: this.totalBytes,
      tornRecords: torn,
      nextSeq: next,
    };
  }

  private advanceHead(seg: Segment): void {
    while (seg.head < seg.entries.length && seg.entries[seg.head]?.done) seg.head++;
  }

  private unlinkSegment(seg: Segment): void {
    if (seg.fd !== null) {
      closeSync(seg.fd);
      seg.fd = null;
    }
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
    if (this.active === seg) this.active = null;
    this.totalBytes -= seg.bytes;
    this.unlinkSegment(seg);
  }

  /** Drops the oldest segment (its unacked records are counted as dropped). */
  private dropOldest(why: string): void {
    const seg = this.segments[0];
    if (!seg) return;
    let n = 0;
    for (const e of seg.entries) {
      if (e.done) continue;
      e.done = true;
      this.index.delete(e.seq);
      this.cache.delete(e.seq);
      n++;
    }
    seg.live = 0;
    this.liveCount -= n;
    this.droppedCount += n;
    this.removeSegment(seg);
    this.log?.warn(
      { dropped: n, reason: why, spoolBytes: this.totalBytes },
      'spool full: dropped the oldest samples',
    );
  }

  private enforceBounds(): void {
    while (this.totalBytes > this.maxBytes && this.segments.length > 1) this.dropOldest('size');
    const cutoff = this.now() - this.maxAgeMs;
    while (this.segments.length > 0 && (this.segments[0]?.lastTs ?? 0) < cutoff) this.dropOldest('age');
  }

  push(sample: Sample): void {
    const payload = Buffer.from(JSON.stringify(sample));
    const rec = encodeRecord(sample, payload);
    // A full file system (ENOSPC, EDQUOT) is a bound like maxBytes: drop the oldest samples and
    // try again; when nothing older is left, this sample is dropped. Counted, never thrown.
    for (;;) {
      try {
        this.append(sample, payload, rec);
        return;
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        if (this.liveCount === 0) {
          this.droppedCount++;
          this.log?.warn(
            { dropped: 1, reason: 'disk full' },
            'spool full: dropped a sample (nothing older to free)',
          );
          return;
        }
        this.dropOldest('disk full');
      }
    }
  }

  private append(sample: Sample, payload: Buffer, rec: Buffer): void {
    if (!this.active || this.active.bytes >= this.segmentBytes) this.rotate(sample.seq);
    const seg = this.active as Segment;
    const written = writeSync(seg.fd as number, rec);
    if (written !== rec.length) {
      // a short write on a full disk: cut the torn record off again
      ftruncateSync(seg.fd as number, seg.bytes);
      throw Object.assign(new Error('ENOSPC: short write to the spool'), { code: 'ENOSPC' });
    }
    const entry: Entry = {
      seq: sample.seq,
      ts: sample.ts,
      offset: seg.bytes + HEADER_BYTES,
      length: payload.length,
      done: false,
    };
    seg.entries.push(entry);
    seg.bytes += rec.length;
    seg.live++;
    seg.lastTs = Math.max(seg.lastTs, sample.ts);
    this.totalBytes += rec.length;
    this.liveCount++;
    this.index.set(sample.seq, { seg, entry });
    this.cache.set(sample.seq, sample);
    if (this.cache.size > CACHE_SIZE) {
      const first = this.cache.keys().next();
      if (!first.done) this.cache.delete(first.value);
    }
    this.lastSeq = sample.seq;
    if (sample.seq >= this.next) {
      this.next = sample.seq + 1;
      const tmp = `${this.seqPath}.tmp`;
      try {
        writeFileSync(tmp, String(this.next));
        renameSync(tmp, this.seqPath);
      } catch (err) {
        // disk full: the records carry their seqs, load() continues after the newest of them
        if (!isDiskFull(err)) throw err;
      }
    }
    this.enforceBounds();
  }

  private rotate(firstSeq: number): void {
    if (this.active?.fd !== null && this.active?.fd !== undefined) {
      closeSync(this.active.fd);
      this.active.fd = null;
    }
    const name = `seg-${String(firstSeq).padStart(16, '0')}.log`;
    const path = join(this.dir, name);
    const seg: Segment = {
      name,
      path,
      ackPath: path.replace(/\.log$/, '.ack'),
      entries: [],
      head: 0,
      live: 0,
      bytes: 0,
      lastTs: 0,
      fd: openSync(path, 'a'),
    };
    // A leftover file of that name (a crash before its first record) is replaced.
    this.segments.push(seg);
    this.active = seg;
  }

  private read(seg: Segment, e: Entry): Sample | null {
    const cached = this.cache.get(e.seq);
    if (cached) return cached;
    const buf = Buffer.allocUnsafe(e.length);
    let fd: number | null = null;
    try {
      fd = openSync(seg.path, 'r');
      const n = readSync(fd, buf, 0, e.length, e.offset);
      if (n !== e.length) return null;
      return JSON.parse(buf.toString('utf8')) as Sample;
    } catch {
      return null;
    } finally {
      if (fd !== null) closeSync(fd);
    }
  }

  newest(): Sample | undefined {
    if (this.lastSeq === null) return undefined;
    const hit = this.index.get(this.lastSeq);
    if (!hit) return undefined;
    return this.read(hit.seg, hit.entry) ?? undefined;
  }

  oldest(max: number, exclude?: number): Sample[] {
    const out: Sample[] = [];
    const unreadable: number[] = [];
    for (const seg of this.segments) {
      for (let i = seg.head; i < seg.entries.length && out.length < max; i++) {
        const e = seg.entries[i] as Entry;
        if (e.done || e.seq === exclude) continue;
        const s = this.read(seg, e);
        if (s) out.push(s);
        else unreadable.push(e.seq);
      }
      if (out.length >= max) break;
    }
    if (unreadable.length > 0) {
      this.countDropped(this.remove(unreadable));
      this.log?.error({ dropped: unreadable.length }, 'spool records unreadable; dropped them');
    }
    return out;
  }

  has(seq: number): boolean {
    return this.index.has(seq);
  }

  remove(seqs: Iterable<number>): number {
    let n = 0;
    const acks = new Map<Segment, number[]>();
    for (const seq of seqs) {
      const hit = this.index.get(seq);
      if (!hit) continue;
      this.index.delete(seq);
      this.cache.delete(seq);
      hit.entry.done = true;
      hit.seg.live--;
      this.liveCount--;
      n++;
      const list = acks.get(hit.seg);
      if (list) list.push(seq);
      else acks.set(hit.seg, [seq]);
    }
    for (const [seg, list] of acks) {
      if (seg.live === 0) {
        this.removeSegment(seg);
      } else {
        this.advanceHead(seg);
        appendFileSync(seg.ackPath, `${list.join('\n')}\n`);
      }
    }
    return n;
  }

  countDropped(n: number): void {
    this.droppedCount += n;
  }

  get size(): number {
    return this.liveCount;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  async close(): Promise<void> {
    for (const seg of this.segments) {
      if (seg.fd !== null) {
        closeSync(seg.fd);
        seg.fd = null;
      }
    }
    this.active = null;
  }
}
