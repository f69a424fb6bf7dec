import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StorageInfo } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  StoreWriteError,
} from '../src/storage/metric-store.ts';
import { DiskSpool } from '../src/storage/spool.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { onCleanup, tempDir, waitFor } from './helpers.ts';

const pt = (i: number): MetricPoint => ({
  measurement: 'nvidia_smi',
  tags: { host: 'h', index: '0' },
  ints: { utilization_gpu: i },
  ts: 1_750_000_000_000 + i,
});
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => pt(from + i));
const values = (points: MetricPoint[]) => points.map((p) => p.ints!.utilization_gpu!);

/** A store that is down (network error), answers 4xx for marked points, or records writes. */
class FlakyStore implements MetricStore {
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
  it('keeps batches in order across segments and a reopen; deletes drained segments', async () => {
    const dir = join(await tempDir(), 'spool');
    const s = new DiskSpool({ dir, segmentBytes: 600 });
    expect(s.empty).toBe(true);
    for (let i = 0; i < 10; i++) s.append(batch(i * 3, 3));
    expect(s.stats.records).toBe(10);
    expect(s.stats.points).toBe(30);
    expect(s.stats.segments).toBeGreaterThan(1);
    expect(values(s.peek()!)).toEqual([0, 1, 2]);
    s.ack();
    s.close();

    // Reopen: the read position is not persisted; the segment in progress is sent again from its start.
    const again = new DiskSpool({ dir, segmentBytes: 600 });
    const seen: number[] = [];
    for (let b = again.peek(); b; b = again.peek()) {
      seen.push(...values(b));
      again.ack();
    }
    // 3…29 exactly once, in order (0…2 too if they shared a segment with later records).
    const from = seen[0]!;
    expect(from === 0 || from === 3).toBe(true);
    expect(seen).toEqual(Array.from({ length: 30 - from }, (_, i) => from + i));
    expect(again.stats).toMatchObject({ records: 0, points: 0, segments: 0, bytes: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('skips a torn last record after a crash, keeps the rest', async () => {
    const dir = join(await tempDir(), 'spool');
    const s = new DiskSpool({ dir });
    s.append(batch(0, 2));
    s.append(batch(2, 2));
    s.close();
    const [file] = readdirSync(dir);
    const before = statSync(join(dir, file!)).size;
    // A crash mid-write: a header promising 500 bytes, then only a few.
    const torn = Buffer.alloc(12 + 5);
    torn.writeUInt32BE(500, 0);
    appendFileSync(join(dir, file!), torn);
    const reopened = new DiskSpool({ dir });
    expect(reopened.empty).toBe(false);
    expect(reopened.stats).toMatchObject({ records: 2, points: 4, tornRecords: 1 });
    expect(statSync(join(dir, file!)).size).toBe(before);
    expect(values(reopened.peek()!)).toEqual([0, 1]);
    reopened.ack();
    // New records go after the good ones.
    reopened.append(batch(4, 1));
    expect(values(reopened.peek()!)).toEqual([2, 3]);
    reopened.ack();
    expect(values(reopened.peek()!)).toEqual([4]);
    reopened.close();

    // A corrupt payload (bit flip) is detected by the CRC.
    const dir2 = join(await tempDir(), 'spool');
    const c = new DiskSpool({ dir: dir2 });
    c.append(batch(0, 1));
    c.close();
    const f2 = join(dir2, readdirSync(dir2)[0]!);
    const bad = Buffer.alloc(12 + 4);
    bad.writeUInt32BE(4, 0);
    bad.writeUInt32BE(12345, 4);
    bad.writeUInt32BE(1, 8);
    bad.write('[{}]', 12);
    appendFileSync(f2, bad);
    const c2 = new DiskSpool({ dir: dir2 });
    expect(c2.stats).toMatchObject({ records: 1, tornRecords: 1 });
    c2.close();
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
    for (let i = 0; i < 40; i++) s.append(batch(i * 2, 2));
    expect(s.stats.bytes).toBeLessThanOrEqual(4000);
    expect(s.stats.pointsDroppedFull).toBeGreaterThan(0);
    expect(drops.spool_full).toBe(s.stats.pointsDroppedFull);
    expect(s.stats.points + s.stats.pointsDroppedFull).toBe(80);
    // What is left is the newest, in order.
    const first = values(s.peek()!)[0]!;
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
