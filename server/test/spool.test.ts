import { appendFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { encodeRecord, RECORD_HEADER_BYTES } from '@gpupulse/node';
import type { StorageInfo } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  type EncodedPoint,
  jsonEncoding,
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  StoreWriteError,
} from '../src/storage/metric-store.ts';
import { DiskSpool } from '../src/storage/spool.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { onCleanup, PointStoreDouble, tempDir, waitFor } from './helpers.ts';

const pt = (i: number): MetricPoint => ({
  measurement: 'nvidia_smi',
  tags: { host: 'h', index: '0' },
  ints: { utilization_gpu: i },
  ts: 1_750_000_000_000 + i,
});
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => pt(from + i));
const values = (points: readonly (MetricPoint | EncodedPoint)[]) =>
  points.map((p) => (typeof p === 'string' ? jsonEncoding.decode(p) : p).ints!.utilization_gpu!);
/** Points as the test stores encode them (what a spool holds). */
const enc = (points: MetricPoint[]) => points.map(jsonEncoding.encode);

/** A store that is down (network error), answers 4xx for marked points, or records writes. */
class FlakyStore extends PointStoreDouble implements MetricStore {
  readonly kind = 'influxdb' as const;
  down = false;
  written: MetricPoint[] = [];
  async write(points: readonly MetricPoint[]): Promise<void> {
    if (this.down) throw new StoreWriteError('connect ECONNREFUSED', { retryable: true });
    if (points.some((p) => p.tags.bad === '1'))
      throw new StoreWriteError('InfluxDB write answered 400: field type conflict', {
        retryable: false,
        status: 400,
      });
    this.written.push(...points);
  }
  async query(): Promise<QueryResult> {
    return { series: [] };
  }
  async ping(): Promise<boolean> {
    return !this.down;
  }
  info(): StorageInfo {
    return { kind: 'influxdb', ok: !this.down, warning: null };
  }
  async close(): Promise<void> {}
}

describe('DiskSpool', () => {
  it('keeps batches in order across segments and a reopen, exactly once; deletes drained segments', async () => {
    const dir = join(await tempDir(), 'spool');
    const s = new DiskSpool({ dir, segmentBytes: 600 });
    expect(s.empty).toBe(true);
    for (let i = 0; i < 10; i++) s.append(enc(batch(i * 3, 3)));
    expect(s.stats.records).toBe(10);
    expect(s.stats.points).toBe(30);
    expect(s.stats.segments).toBeGreaterThan(1);
    expect(values(s.peek(jsonEncoding.encode)!)).toEqual([0, 1, 2]);
    s.ack();
    expect(values(s.peek(jsonEncoding.encode)!)).toEqual([3, 4, 5]);
    s.close(); // "crash" before the second batch is acked

    // Reopen: the ack was persisted, so the written batch is not sent again; the unacked one is.
    const again = new DiskSpool({ dir, segmentBytes: 600 });
    const seen: number[] = [];
    for (let b = again.peek(jsonEncoding.encode); b; b = again.peek(jsonEncoding.encode)) {
      seen.push(...values(b));
      again.ack();
    }
    expect(seen).toEqual(Array.from({ length: 27 }, (_, i) => 3 + i));
    expect(again.stats).toMatchObject({ records: 0, points: 0, segments: 0, bytes: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('peek takes the records after the oldest while they fit maxPoints; ack removes them all', async () => {
    const s = new DiskSpool({ dir: join(await tempDir(), 'spool') });
    for (let i = 0; i < 5; i++) s.append(enc(batch(i * 3, 3)));
    expect(values(s.peek(jsonEncoding.encode, 8)!)).toEqual([0, 1, 2, 3, 4, 5]);
    s.ack();
    expect(s.stats).toMatchObject({ records: 3, points: 9 });
    // At least the oldest record, however small maxPoints.
    expect(values(s.peek(jsonEncoding.encode, 1)!)).toEqual([6, 7, 8]);
    s.ack();
    s.append(enc(batch(15, 3)));
    s.append(enc(batch(18, 3)));
    // …and within maxBytes of records (one record here is ~3 × 90 bytes).
    expect(values(s.peek(jsonEncoding.encode, 100, 400)!)).toEqual([9, 10, 11]);
    expect(values(s.peek(jsonEncoding.encode, 100)!)).toEqual([
      9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ]);
    s.ack();
    expect(s.peek(jsonEncoding.encode, 100)).toBeNull();
    s.close();
  });

  it('ack removes the batch peek returned, even when appends and the size bound moved the head', async () => {
    const dir = join(await tempDir(), 'spool');
    const s = new DiskSpool({ dir, maxBytes: 4000, segmentBytes: 1000 });
    s.append(enc(batch(0, 2)));
    expect(values(s.peek(jsonEncoding.encode)!)).toEqual([0, 1]);
    // while that batch is being written, enough arrives to push its segment out (counted)
    for (let i = 1; i < 40; i++) s.append(enc(batch(i * 2, 2)));
    expect(s.stats.pointsDroppedFull).toBeGreaterThan(0);
    const records = s.stats.records;
    s.ack(); // the peeked batch was dropped by the bound (counted): no other batch is acked
    expect(s.stats.records).toBe(records);
    const head = values(s.peek(jsonEncoding.encode)!);
    s.ack();
    expect(s.stats.records).toBe(records - 1);
    expect(values(s.peek(jsonEncoding.encode)!)[0]).toBe(head[0]! + 2);
    s.close();
  });

  it('skips a torn last record after a crash, keeps the rest', async () => {
    const dir = join(await tempDir(), 'spool');
    const s = new DiskSpool({ dir });
    s.append(enc(batch(0, 2)));
    s.append(enc(batch(2, 2)));
    s.close();
    const [file] = readdirSync(dir);
    // A crash mid-write: a header promising 500 bytes, then only a few.
    const torn = Buffer.alloc(RECORD_HEADER_BYTES + 5);
    torn.writeUInt32LE(500, 0);
    appendFileSync(join(dir, file!), torn);
    const reopened = new DiskSpool({ dir });
    expect(reopened.empty).toBe(false);
    expect(reopened.stats).toMatchObject({ records: 2, points: 4, tornRecords: 1 });
    expect(values(reopened.peek(jsonEncoding.encode)!)).toEqual([0, 1]);
    reopened.ack();
    // New records go after the good ones.
    reopened.append(enc(batch(4, 1)));
    expect(values(reopened.peek(jsonEncoding.encode)!)).toEqual([2, 3]);
    reopened.ack();
    expect(values(reopened.peek(jsonEncoding.encode)!)).toEqual([4]);
    reopened.close();

    // A corrupt payload (bit flip) is detected by the CRC.
    const dir2 = join(await tempDir(), 'spool');
    const c = new DiskSpool({ dir: dir2 });
    c.append(enc(batch(0, 1)));
    c.close();
    const f2 = join(dir2, readdirSync(dir2)[0]!);
    const bad = encodeRecord({ id: 1, ts: 0, count: 1 }, Buffer.from('[{}]'));
    bad.writeUInt8(0x5b ^ 0x01, RECORD_HEADER_BYTES);
    appendFileSync(f2, bad);
    const c2 = new DiskSpool({ dir: dir2 });
    expect(c2.stats).toMatchObject({ records: 1, tornRecords: 1 });
    c2.close();
  });

  it('moves a spool of the earlier server format into the log: every batch once, in order', async () => {
    const dir = join(await tempDir(), 'spool');
    mkdirSync(dir, { recursive: true });
    const legacy = (batches: MetricPoint[][]) =>
      Buffer.concat(
        batches.map((b) => {
          const payload = Buffer.from(JSON.stringify(b));
          const rec = Buffer.alloc(12 + payload.length);
          rec.writeUInt32BE(payload.length, 0);
          rec.writeUInt32BE(crc32(payload), 4);
          rec.writeUInt32BE(b.length, 8);
          payload.copy(rec, 12);
          return rec;
        }),
      );
    writeFileSync(join(dir, 'seg-000000000003.spool'), legacy([batch(0, 2), batch(2, 3)]));
    // the second segment ends in a torn record (a crash mid-write)
    writeFileSync(
      join(dir, 'seg-000000000004.spool'),
      Buffer.concat([legacy([batch(5, 1)]), Buffer.alloc(7)]),
    );
    const s = new DiskSpool({ dir });
    expect(s.stats).toMatchObject({ records: 3, points: 6, tornRecords: 1 });
    expect(readdirSync(dir).filter((n) => n.endsWith('.spool'))).toEqual([]);
    s.append(enc(batch(6, 1)));
    const seen: number[] = [];
    for (let b = s.peek(jsonEncoding.encode); b; b = s.peek(jsonEncoding.encode)) {
      seen.push(...values(b));
      s.ack();
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
    s.close();
    // opened again: nothing comes back
    expect(new DiskSpool({ dir }).empty).toBe(true);
  });

  it('is bounded: the oldest segments are deleted and their points counted', async () => {
    const dir = join(await tempDir(), 'spool');
    const drops: Record<string, number> = {};
    const s = new DiskSpool({
      dir,
      maxBytes: 4000,
      segmentBytes: 1000,
      onDrop: (r, n) => {
        drops[r] = (drops[r] ?? 0) + n;
      },
    });
    for (let i = 0; i < 40; i++) s.append(enc(batch(i * 2, 2)));
    expect(s.stats.bytes).toBeLessThanOrEqual(4000);
    expect(s.stats.pointsDroppedFull).toBeGreaterThan(0);
    expect(drops.spool_full).toBe(s.stats.pointsDroppedFull);
    expect(s.stats.points + s.stats.pointsDroppedFull).toBe(80);
    // What is left is the newest, in order.
    const first = values(s.peek(jsonEncoding.encode)!)[0]!;
    expect(first).toBe(80 - s.stats.points);
    s.close();
  });
});

describe('WriteBuffer with a disk spool', () => {
  it('spools while storage is down, keeps new batches behind the spool, drains in order', async () => {
    const dir = join(await tempDir(), 'spool');
    const store = new FlakyStore();
    const spooled: number[] = [];
    const buffer = new WriteBuffer({
      store,
      batchSize: 10,
      flushIntervalMs: 20,
      initialBackoffMs: 20,
      maxBackoffMs: 50,
      maxPoints: 50,
      spool: new DiskSpool({ dir }),
      observer: { spooled: (n) => spooled.push(n) },
    });
    buffer.start();
    onCleanup(() => buffer.close(500));
    buffer.enqueue(batch(0, 10));
    await waitFor(() => store.written.length === 10, 2000, 'first write');
    store.down = true;
    // 200 points while down: far more than maxPoints (50) — nothing is dropped, it goes to disk.
    for (let i = 1; i <= 20; i++) {
      buffer.enqueue(batch(i * 10, 10));
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => buffer.buffered === 0 && buffer.spooled === 200, 3000, 'everything spooled');
    expect(buffer.stats.pointsDroppedOverflow).toBe(0);
    expect(spooled.reduce((a, b) => a + b, 0)).toBe(200);
    store.down = false;
    // New points while draining go behind the spool.
    buffer.enqueue(batch(210, 5));
    await waitFor(() => store.written.length === 215, 5000, 'drained');
    expect(values(store.written)).toEqual(Array.from({ length: 215 }, (_, i) => i));
    expect(buffer.spooled).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('4xx from a spooled batch: dropped and counted, the drain goes on', async () => {
    const dir = join(await tempDir(), 'spool');
    const store = new FlakyStore();
    const dropped: Record<string, number> = {};
    const buffer = new WriteBuffer({
      store,
      batchSize: 2,
      maxWritePoints: 2,
      flushIntervalMs: 20,
      initialBackoffMs: 20,
      maxBackoffMs: 40,
      spool: new DiskSpool({ dir }),
      observer: {
        dropped: (r, n) => {
          dropped[r] = (dropped[r] ?? 0) + n;
        },
      },
    });
    buffer.start();
    onCleanup(() => buffer.close(500));
    store.down = true;
    const bad = { ...pt(100), tags: { host: 'h', bad: '1' } };
    buffer.enqueue([pt(1), pt(2), bad, pt(3), pt(4), pt(5)]);
    await waitFor(() => buffer.spooled === 6, 2000, 'spooled');
    store.down = false;
    await waitFor(() => buffer.spooled === 0 && buffer.buffered === 0, 3000, 'drained');
    expect(values(store.written)).toEqual([1, 2, 4, 5]);
    expect(dropped.rejected).toBe(2);
    expect(buffer.stats.batchesRejected).toBe(1);
  });

  it('shutdown while storage is down keeps the points on disk; the next start drains them first', async () => {
    const dir = join(await tempDir(), 'spool');
    const store = new FlakyStore();
    store.down = true;
    const first = new WriteBuffer({
      store,
      batchSize: 5,
      flushIntervalMs: 10_000,
      spool: new DiskSpool({ dir }),
    });
    first.enqueue(batch(0, 12));
    const t = Date.now();
    await first.close(5000);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(first.stats.pointsDroppedShutdown).toBe(0);
    store.down = false;
    const second = new WriteBuffer({
      store,
      batchSize: 5,
      flushIntervalMs: 20,
      spool: new DiskSpool({ dir }),
    });
    onCleanup(() => second.close(500));
    second.start();
    second.enqueue(batch(12, 3));
    await waitFor(() => store.written.length === 15, 3000, 'drained after restart');
    expect(values(store.written)).toEqual(Array.from({ length: 15 }, (_, i) => i));
  });
});
