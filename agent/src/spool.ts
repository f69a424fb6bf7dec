// The agent's bounded disk spool of unacked samples (implements SampleQueue) on the shared
// segmented log (@gpupulse/node): one record per sample, id = the sample's seq, ts = its ts,
// payload = the sample as UTF-8 JSON. Acked samples are removed (the log's ack file), so after a
// restart only unacked samples come back, and the seq continues (the log persists the next id).
// Bounds: bytes and age; a full file system drops the oldest samples. Every drop is counted.
//
// An agent upgraded with samples in the spool format of earlier versions (`seg-<seq>.log` with
// a 24-byte big header, `.ack` files, `next-seq`) moves them into the log once when it opens the
// spool (see migrateLegacySpool), so no sample is lost by an upgrade.
import { existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type DropReason, SegmentedLog } from '@gpupulse/node';
import type { Sample } from '@gpupulse/protocol';
import { DEFAULT_SPOOL_MAX_AGE_MS, DEFAULT_SPOOL_MAX_BYTES } from './config.ts';
import type { Logger } from './logger.ts';
import type { SampleQueue } from './queue.ts';

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

export interface SpoolOpenReport {
  segments: number;
  samples: number;
  bytes: number;
  tornRecords: number;
  nextSeq: number;
  /** Samples moved from the spool format of earlier agent versions. */
  migrated: number;
}

export class DiskSpool implements SampleQueue {
  readonly dir: string;
  private readonly log: SegmentedLog;
  private readonly logger: Logger | undefined;
  private readonly cache = new Map<number, Sample>();
  private extraDropped = 0;
  /** What was found when the spool was opened (torn records, samples, next seq). */
  readonly opened: SpoolOpenReport;

  constructor(options: DiskSpoolOptions) {
    this.dir = options.dir;
    this.logger = options.logger;
    this.log = new SegmentedLog({
      dir: options.dir,
      maxBytes: options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES,
      maxAgeMs: options.maxAgeMs ?? DEFAULT_SPOOL_MAX_AGE_MS,
      segmentBytes: options.segmentBytes,
      persistNextId: true,
      onDiskFull: 'drop-oldest',
      logger: options.logger,
      now: options.now,
      onDrop: (reason, records) => this.onDrop(reason, records),
    });
    const migrated = migrateLegacySpool(this.dir, this.log, options.logger);
    const o = this.log.opened;
    this.opened = {
      segments: this.log.segmentCount,
      samples: this.log.records,
      bytes: this.log.bytes,
      tornRecords: o.tornRecords + migrated.tornRecords,
      nextSeq: this.log.nextId,
      migrated: migrated.samples,
    };
  }

  private onDrop(reason: DropReason, records: number): void {
    if (reason === 'unreadable') return; // logged by the log itself
    if (reason === 'no room') {
      this.logger?.warn({ dropped: records, reason }, 'spool full: dropped a sample (nothing older to free)');
      return;
    }
    // the cache may hold dropped samples: keep it to what the log still has
    for (const seq of this.cache.keys()) if (!this.log.has(seq)) this.cache.delete(seq);
    this.logger?.warn(
      { dropped: records, reason, spoolBytes: this.log.bytes },
      'spool full: dropped the oldest samples',
    );
  }

  /** The sequence number the next sample must carry (continues across restarts). */
  get nextSeq(): number {
    return this.log.nextId;
  }

  push(sample: Sample): void {
    const id = this.log.append(Buffer.from(JSON.stringify(sample)), { id: sample.seq, ts: sample.ts });
    if (id === null) return; // a full disk and nothing older to drop: counted by the log
    this.cache.set(sample.seq, sample);
    if (this.cache.size > CACHE_SIZE) {
      const first = this.cache.keys().next();
      if (!first.done) this.cache.delete(first.value);
    }
  }

  private read(seq: number): Sample | null {
    const cached = this.cache.get(seq);
    if (cached) return cached;
    const buf = this.log.read(seq);
    if (!buf) return null;
    try {
      return JSON.parse(buf.toString('utf8')) as Sample;
    } catch {
      // CRC-checked on open, so this is a file changed under us: drop it, counted
      this.log.remove([seq]);
      this.extraDropped++;
      this.logger?.error({ seq }, 'spool record unreadable; dropped it');
      return null;
    }
  }

  newest(): Sample | undefined {
    const id = this.log.newestId;
    return id === undefined ? undefined : (this.read(id) ?? undefined);
  }

  oldest(max: number, exclude?: number): Sample[] {
    const out: Sample[] = [];
    if (max <= 0) return out;
    for (const r of this.log.live()) {
      if (r.id === exclude) continue;
      const s = this.read(r.id);
      if (s) out.push(s);
      if (out.length >= max) break;
    }
    return out;
  }

  has(seq: number): boolean {
    return this.log.has(seq);
  }

  remove(seqs: Iterable<number>): number {
    const list = [...seqs];
    for (const seq of list) this.cache.delete(seq);
    return this.log.remove(list);
  }

  countDropped(n: number): void {
    this.extraDropped += n;
  }

  countDelivered(n: number): void {
    this.extraDropped -= n;
  }

  get size(): number {
    return this.log.records;
  }

  get bytes(): number {
    return this.log.bytes;
  }

  /** Samples dropped since start: bounds, full disk, unreadable, and refused by the server. */
  get dropped(): number {
    return this.log.dropped.records + this.extraDropped;
  }

  async close(): Promise<void> {
    this.log.close();
  }
}

// ---- the spool format of agents before @gpupulse/node (read once, to migrate) ----

const LEGACY_SEGMENT = /^seg-(\d{16})\.log$/;
const LEGACY_HEADER = 24;

interface LegacyRecord {
  seq: number;
  ts: number;
  payload: Buffer;
}

/**
 * Reads a segment of the earlier agent format: records of
 * [u32 LE length][u32 LE crc32(seq, ts, payload)][f64 LE seq][f64 LE ts][payload], up to the
 * first torn or corrupt one.
 */
export function scanLegacySegment(buf: Buffer): { records: LegacyRecord[]; torn: boolean } {
  const records: LegacyRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < LEGACY_HEADER) return { records, torn: true };
    const len = buf.readUInt32LE(off);
    if (len > 16 * 1024 * 1024 || off + LEGACY_HEADER + len > buf.length) return { records, torn: true };
    if (crc32(buf.subarray(off + 8, off + LEGACY_HEADER + len)) !== buf.readUInt32LE(off + 4))
      return { records, torn: true };
    records.push({
      seq: buf.readDoubleLE(off + 8),
      ts: buf.readDoubleLE(off + 16),
      payload: buf.subarray(off + LEGACY_HEADER, off + LEGACY_HEADER + len),
    });
    off += LEGACY_HEADER + len;
  }
  return { records, torn: false };
}

/**
 * Moves the unacked samples of an earlier agent's spool in `dir` into `log` (same seq, ts and
 * JSON), then deletes the old files. A crash in between is harmless: records the log already has
 * are skipped the next time. Returns how many samples moved.
 */
export function migrateLegacySpool(
  dir: string,
  log: SegmentedLog,
  logger?: Logger,
): { samples: number; tornRecords: number } {
  const names = readdirSync(dir)
    .filter((n) => LEGACY_SEGMENT.test(n))
    .sort();
  const seqPath = join(dir, 'next-seq');
  if (names.length === 0 && !existsSync(seqPath)) return { samples: 0, tornRecords: 0 };
  let torn = 0;
  const pending: LegacyRecord[] = [];
  const seen = new Set<number>();
  for (const name of names) {
    const path = join(dir, name);
    const scan = scanLegacySegment(readFileSync(path));
    if (scan.torn) torn++;
    const ackPath = path.replace(/\.log$/, '.ack');
    const acked = new Set<number>();
    if (existsSync(ackPath))
      for (const line of readFileSync(ackPath, 'utf8').split('\n'))
        if (line !== '' && Number.isFinite(Number(line))) acked.add(Number(line));
    for (const r of scan.records) {
      if (acked.has(r.seq) || seen.has(r.seq)) continue;
      seen.add(r.seq);
      pending.push(r);
    }
  }
  pending.sort((a, b) => a.seq - b.seq);
  let moved = 0;
  for (const r of pending) {
    if (log.has(r.seq) || r.seq < log.nextId) continue; // moved before a crash
    if (log.append(r.payload, { id: r.seq, ts: r.ts }) !== null) moved++;
  }
  // The old next seq (samples may have been acked and their files deleted): never go below it.
  const savedNext = existsSync(seqPath) ? Number(readFileSync(seqPath, 'utf8').trim()) : Number.NaN;
  if (Number.isSafeInteger(savedNext) && savedNext > log.nextId) log.advanceNextId(savedNext);
  for (const name of names) {
    const path = join(dir, name);
    for (const p of [path, path.replace(/\.log$/, '.ack')]) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
  }
  try {
    unlinkSync(seqPath);
  } catch {
    // already gone
  }
  logger?.info(
    { samples: moved, segments: names.length, tornRecords: torn, nextSeq: log.nextId },
    'moved the spool of an earlier agent version to the current format',
  );
  return { samples: moved, tornRecords: torn };
}
