import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/storage/memory-store.ts';
import { type MetricPoint, type MetricStore, StoreWriteError } from '../src/storage/metric-store.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { onCleanup, PointStoreDouble, waitFor } from './helpers.ts';

const pt = (ts: number, v = 1, host = 'h'): MetricPoint => ({
  measurement: 'm',
  tags: { host },
  ints: { v },
  strings: { s: `x${v}` },
  ts,
});

describe('MemoryStore', () => {
  it('is bounded by count (drops counted) and by age', async () => {
    let now = 10_000_000;
    const store = new MemoryStore({ maxPoints: 3, maxAgeMs: 1000, now: () => now });
    await store.write([pt(now, 1), pt(now + 1, 2), pt(now + 2, 3), pt(now + 3, 4)]);
    expect(store.size).toBe(3);
    expect(store.dropped).toBe(1);
    now += 2000;
    expect(store.points()).toEqual([]);
  });

  it('a point with the series and time of a stored one replaces its fields, as in InfluxDB', async () => {
    const now = 10_000_000;
    const store = new MemoryStore({ maxPoints: 3, now: () => now });
    await store.write([pt(now, 1), pt(now, 2, 'other'), pt(now, 3)]);
    expect(store.size).toBe(2);
    expect(store.points().map((p) => [p.tags.host, p.ints?.v ?? p.floats?.v])).toEqual([
      ['h', 3],
      ['other', 2],
    ]);
    // Evicted points leave the index: the same key later is a new point.
    await store.write([pt(now + 1, 4), pt(now + 2, 5), pt(now + 3, 6), pt(now, 7)]);
    expect(store.size).toBe(3);
    expect(store.points().map((p) => p.ts)).toEqual([now + 2, now + 3, now]);
  });

  it('answers a small InfluxQL subset', async () => {
    const now = Date.now();
    const store = new MemoryStore({ now: () => now });
    await store.write([pt(now - 3000, 1, 'a'), pt(now - 2000, 2, 'b'), pt(now - 1000, 3, 'a')]);
    const r = await store.query(`SELECT v FROM "m" WHERE time > now() - 2500ms AND "host" = 'a'`);
    expect(r.series).toEqual([{ name: 'm', columns: ['time', 'v'], values: [[now - 1000, 3]] }]);
    const all = await store.query(`SELECT * FROM m WHERE time >= ${now - 2000}ms LIMIT 1`);
    expect(all.series[0]).toEqual({
      name: 'm',
      columns: ['time', 'host', 's', 'v'],
      values: [[now - 2000, 'b', 'x2', 2]],
    });
    await expect(store.query('SELECT mean(v) FROM m GROUP BY time(1m)')).rejects.toThrow(/does not support/);
    expect(
      store.readSeries({ measurement: 'm', field: 'v', tags: { host: 'a' } }).map((x) => x.value),
    ).toEqual([1, 3]);
  });
});

class FakeStore extends PointStoreDouble implements MetricStore {
  readonly kind = 'influxdb' as const;
  written: MetricPoint[][] = [];
  failures: Error[] = [];
  private gate: Promise<void> | null = null;
  async write(points: readonly MetricPoint[]): Promise<void> {
    if (this.gate && this.written.length === 0) await this.gate;
    const f = this.failures.shift();
    if (f) throw f;
    this.written.push([...points]);
  }
  /** The first write hangs (storage behind) until the returned function is called. */
  holdFirstWrite(): () => void {
    let release = () => {};
    this.gate = new Promise<void>((r) => {
      release = r;
    });
    return release;
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

function buffer(store: MetricStore, opts: Partial<ConstructorParameters<typeof WriteBuffer>[0]> = {}) {
  const b = new WriteBuffer({
    store,
    batchSize: 2,
    flushIntervalMs: 20,
    initialBackoffMs: 10,
    maxBackoffMs: 40,
    ...opts,
  });
  b.start();
  onCleanup(() => b.close(100));
  return b;
}

describe('WriteBuffer', () => {
  it('batches by size and by time', async () => {
    const store = new FakeStore();
    const b = buffer(store, { flushIntervalMs: 60_000, maxWritePoints: 2 });
    b.enqueue([pt(1), pt(2), pt(3)]);
    await waitFor(() => store.written.length === 1, 1000, 'full batch');
    expect(store.written[0]!.map((p) => p.ts)).toEqual([1, 2]);
    expect(b.buffered).toBe(1);
    await b.flush(1000);
    expect(store.written.map((w) => w.length)).toEqual([2, 1]);
  });

  it('a backlog goes in writes of several chunks, up to maxWritePoints, in order', async () => {
    const store = new FakeStore();
    // The first write hangs (storage behind) while 11 more points arrive in chunks of 2.
    const release = store.holdFirstWrite();
    const b = buffer(store, { flushIntervalMs: 60_000, maxWritePoints: 5 });
    b.enqueue([pt(0), pt(1)]);
    for (let i = 2; i < 13; i++) b.enqueue([pt(i)]);
    release();
    await waitFor(() => b.buffered === 0, 2000, 'the backlog written');
    // [0,1] alone (in flight before the backlog), then whole chunks up to 5 points (a partial last
    // chunk goes along with a full one).
    expect(store.written.map((w) => w.map((p) => p.ts))).toEqual([
      [0, 1],
      [2, 3, 4, 5],
      [6, 7, 8, 9],
      [10, 11, 12],
    ]);
    expect(b.stats).toMatchObject({ batchesOk: 4, pointsWritten: 13 });
  });

  it('a merged write also stays within maxWriteBytes of encoded text (InfluxDB 3 caps request bodies)', async () => {
    const store = new FakeStore();
    const size = store.encode(pt(10)).length; // every test point encodes to the same length
    const release = store.holdFirstWrite();
    // Room for 100 points, but only for the text of 5: chunks of 2 go two at a time.
    const b = buffer(store, { flushIntervalMs: 60_000, maxWritePoints: 100, maxWriteBytes: 5 * size });
    b.enqueue([pt(10), pt(11)]);
    for (let i = 12; i < 20; i++) b.enqueue([pt(i)]);
    release();
    await waitFor(() => b.buffered === 0, 2000, 'the backlog written');
    expect(store.written.map((w) => w.length)).toEqual([2, 4, 4]);
  });

  it('retries retryable errors with backoff and keeps order', async () => {
    const store = new FakeStore();
    store.failures = [
      new StoreWriteError('503', { retryable: true, status: 503 }),
      new StoreWriteError('ECONNREFUSED', { retryable: true }),
    ];
    const b = buffer(store);
    b.enqueue([pt(1)]);
    await waitFor(() => store.written.length === 1, 2000, 'write after retries');
    expect(b.stats).toMatchObject({
      batchesRetried: 2,
      batchesOk: 1,
      pointsWritten: 1,
      consecutiveFailures: 0,
    });
  });

  it('drops and counts non-retryable (4xx) errors without retrying', async () => {
    const store = new FakeStore();
    store.failures = [
      new StoreWriteError('400 partial write: dropped=1', { retryable: false, status: 400, dropped: 1 }),
    ];
    const b = buffer(store, { batchSize: 5 });
    b.enqueue([pt(1), pt(2)]);
    await waitFor(() => b.stats.batchesRejected === 1, 2000, 'rejected');
    expect(b.stats).toMatchObject({ pointsRejected: 1, pointsWritten: 1, batchesRetried: 0 });
    expect(b.buffered).toBe(0);
  });

  it('flush waits for a write started meanwhile instead of spinning (event loop free, nothing dropped)', async () => {
    // A store answering after 50 ms (on a timer, as a socket would): while flush writes one batch,
    // points still arriving start a write of their own; flush must wait for it, not spin on
    // microtasks (which starved the timer that ends that write, then dropped it at the deadline).
    class SlowStore extends FakeStore {
      override async write(points: readonly MetricPoint[]): Promise<void> {
        await new Promise((r) => setTimeout(r, 50));
        await super.write(points);
      }
    }
    const store = new SlowStore();
    const b = buffer(store, { flushIntervalMs: 60_000 });
    b.enqueue([pt(1)]);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    // Points arrive during flush's first write (20 ms in): a full batch starts its own write.
    const late = setTimeout(() => b.enqueue([pt(2), pt(3)]), 20);
    const started = Date.now();
    await b.flush(2000);
    const took = Date.now() - started;
    clearInterval(ticker);
    clearTimeout(late);
    expect(b.stats.pointsDroppedShutdown).toBe(0);
    expect(
      store.written
        .flat()
        .map((p) => p.ts)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(took).toBeLessThan(1000);
    expect(ticks).toBeGreaterThan(5);
  });

  it('is bounded: overflow drops the oldest and counts them', async () => {
    const store = new FakeStore();
    store.failures = Array.from({ length: 1000 }, () => new StoreWriteError('down', { retryable: true }));
    const b = buffer(store, { maxPoints: 4, batchSize: 2, maxBackoffMs: 10_000, initialBackoffMs: 10_000 });
    b.enqueue([pt(1), pt(2), pt(3), pt(4), pt(5), pt(6)]);
    expect(b.buffered).toBeLessThanOrEqual(4);
    expect(b.stats.pointsDroppedOverflow).toBeGreaterThanOrEqual(2);
  });
});
