/**
 * Backpressure in the write buffer: a backlog past its bound goes to the disk spool (slow
 * storage, not only failing storage); past the spool's bound `admit` refuses; without a spool
 * the memory bound refuses. Nothing acked is dropped on the way.
 */
import { describe, expect, it } from 'vitest';
import { jsonEncoding, type MetricPoint, type MetricStore } from '../src/storage/metric-store.ts';
import { DiskSpool } from '../src/storage/spool.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { onCleanup, PointStoreDouble, tempDir, waitFor } from './helpers.ts';

const pt = (ts: number): MetricPoint => ({ measurement: 'm', tags: { host: 'h' }, ints: { v: ts }, ts });
const pts = (from: number, n: number) => Array.from({ length: n }, (_, i) => pt(from + i));

/** A store whose writes hang until released (a stopped influxd), then succeed. */
class GatedStore extends PointStoreDouble implements MetricStore {
  readonly kind = 'influxdb' as const;
  written = new Set<number>();
  writes = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  hold(): void {
    this.gate = new Promise((r) => {
      this.open = r;
    });
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  async write(points: readonly MetricPoint[]): Promise<void> {
    this.writes++;
    if (this.gate) await this.gate;
    for (const p of points) this.written.add(p.ts);
  }
  async query() {
    return { series: [] };
  }
  async ping() {
    return true;
  }
  info() {
    return { kind: 'influxdb' as const, ok: true, warning: null };
  }
  async close() {}
}

function makeBuffer(store: MetricStore, opts: Partial<ConstructorParameters<typeof WriteBuffer>[0]>) {
  const drops: Record<string, number> = {};
  const b = new WriteBuffer({
    store,
    batchSize: 100,
    flushIntervalMs: 10,
    initialBackoffMs: 10,
    maxBackoffMs: 50,
    observer: { dropped: (reason, n) => (drops[reason] = (drops[reason] ?? 0) + n) },
    ...opts,
  });
  b.start();
  onCleanup(() => b.close(0));
  return { b, drops };
}

describe('write buffer backpressure', () => {
  it('spools a backlog past spillPoints while a write hangs; memory stays bounded; every point lands', async () => {
    const store = new GatedStore();
    const spool = new DiskSpool({ dir: await tempDir('gpupulse-spill-'), maxBytes: 64 * 1024 ** 2 });
    const { b, drops } = makeBuffer(store, { maxPoints: 2000, spillPoints: 300, spool });
    store.hold();
    let maxBuffered = 0;
    for (let i = 0; i < 50; i++) {
      expect(b.admit(100).ok).toBe(true);
      b.enqueue(pts(i * 100, 100));
      maxBuffered = Math.max(maxBuffered, b.buffered);
    }
    // in memory: at most the spill bound plus the batch in flight
    expect(maxBuffered).toBeLessThanOrEqual(300 + 100);
    expect(b.stats.spills).toBeGreaterThanOrEqual(1);
    expect(b.spooled).toBeGreaterThan(4000);
    store.release();
    await waitFor(() => store.written.size === 5000 && b.spooled === 0 && b.buffered === 0, 10_000, 'drain');
    expect(drops).toEqual({});
    expect(b.stats.pointsSpooled).toBeGreaterThan(4000);
  });

  it('refuses (spool_full) before the spool would have to delete points, and takes again once drained', async () => {
    const store = new GatedStore();
    const spool = new DiskSpool({
      dir: await tempDir('gpupulse-spill-'),
      maxBytes: 64 * 1024,
      segmentBytes: 4096,
    });
    const { b, drops } = makeBuffer(store, { maxPoints: 2000, spillPoints: 50, spool, spoolHighWater: 0.5 });
    store.hold();
    let taken = 0;
    let refused = 0;
    for (let i = 0; i < 400 && refused === 0; i++) {
      const a = b.admit(20);
      if (!a.ok) {
        expect(a).toMatchObject({ reason: 'spool_full' });
        expect(a.retryAfterMs).toBeGreaterThan(0);
        refused++;
        continue;
      }
      b.enqueue(pts(i * 20, 20));
      taken += 20;
    }
    expect(refused).toBe(1);
    expect(spool.stats.bytes).toBeLessThan(64 * 1024);
    expect(b.stats.refused).toBe(1);
    store.release();
    await waitFor(() => store.written.size === taken && b.spooled === 0, 10_000, 'drain');
    expect(b.admit(20).ok).toBe(true);
    expect(drops).toEqual({});
    expect(spool.stats.pointsDroppedFull).toBe(0);
  });

  it('a draining spool is judged by its points, not by the acked records its files still hold', async () => {
    const store = new GatedStore();
    const spool = new DiskSpool({ dir: await tempDir('gpupulse-spill-'), maxBytes: 64 * 1024 });
    // One 16 KiB segment of 20-point batches (~1.7 KiB each as the test store encodes them), all
    // but the newest written (acked): the file keeps the acked records' bytes until the whole
    // segment is done.
    for (let i = 0; i < 9; i++) spool.append(pts(i * 20, 20).map(jsonEncoding.encode));
    for (let i = 0; i < 8; i++) {
      expect(spool.peek(jsonEncoding.encode)).toHaveLength(20);
      spool.ack();
    }
    expect(spool.stats).toMatchObject({ records: 1, points: 20, segments: 1 });
    const fileBytesPerPoint = spool.stats.bytes / 20;
    expect(spool.bytesPerPoint * 8).toBeLessThan(fileBytesPerPoint);
    const { b } = makeBuffer(store, { maxPoints: 2000, spillPoints: 50, spool });
    store.hold();
    // 200 points take about 200 × bytesPerPoint (~17 KiB), far under 90 % of 64 KiB; counted at the
    // file's bytes per live point they would "need" over 150 KiB.
    expect(spool.stats.bytes + 200 * spool.bytesPerPoint).toBeLessThan(0.9 * 64 * 1024);
    expect(spool.stats.bytes + 200 * fileBytesPerPoint).toBeGreaterThan(0.9 * 64 * 1024);
    expect(b.admit(200).ok).toBe(true);
    expect(b.stats.refused).toBe(0);
    store.release();
  });

  it('without a spool, refuses at 80 % of maxPoints instead of dropping', async () => {
    const store = new GatedStore();
    const { b, drops } = makeBuffer(store, { maxPoints: 1000 });
    store.hold();
    let taken = 0;
    for (let i = 0; i < 30; i++) {
      if (!b.admit(100).ok) break;
      b.enqueue(pts(i * 100, 100));
      taken += 100;
    }
    expect(taken).toBe(800);
    expect(b.admit(100)).toMatchObject({ ok: false, reason: 'backlog_full' });
    store.release();
    await waitFor(() => store.written.size === 800, 5000, 'drain');
    expect(drops).toEqual({});
  });
});
