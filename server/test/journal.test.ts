// The write buffer's write-ahead journal: acked points are on disk before the ack and leave the
// journal when they leave memory, so a server killed between ack and write loses none.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SegmentedLog } from '@gpupulse/node';
import type { StorageInfo } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { WriteJournal } from '../src/storage/journal.ts';
import {
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  StoreWriteError,
} from '../src/storage/metric-store.ts';
import { DiskSpool } from '../src/storage/spool.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { PointStoreDouble, tempDir, waitFor } from './helpers.ts';

const pt = (i: number): MetricPoint => ({
  measurement: 'nvidia_smi',
  tags: { host: 'h', index: '0' },
  ints: { utilization_gpu: i % 100 },
  floats: { power_draw: i / 2 },
  ts: 1_750_000_000_000 + i,
});
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => pt(from + i));
const times = (points: readonly MetricPoint[]) => points.map((p) => p.ts - 1_750_000_000_000);

/**
 * A store that records writes; `slow`: fails with a timeout after 200 ms (an influxd that stopped
 * answering); `hung`: never answers (the write is still in flight when the process is killed).
 */
class RecordingStore extends PointStoreDouble implements MetricStore {
  readonly kind = 'influxdb' as const;
  mode: 'ok' | 'slow' | 'hung' = 'ok';
  written: MetricPoint[] = [];
  async write(points: readonly MetricPoint[]): Promise<void> {
    if (this.mode === 'hung') return new Promise(() => {});
    if (this.mode === 'slow') {
      await new Promise((r) => setTimeout(r, 200));
      throw new StoreWriteError('timeout', { retryable: true });
    }
    this.written.push(...points);
  }
  async query(): Promise<QueryResult> {
    return { series: [] };
  }
  async ping(): Promise<boolean> {
    return true;
  }
  info(): StorageInfo {
    return { kind: 'influxdb', ok: true, warning: null };
  }
  async close(): Promise<void> {}
}

/**
 * A write buffer with spool and journal in `dir`. `killed`: one whose process is killed in the
 * test — no timer of its own runs meanwhile (writes start only when a full batch is enqueued), so
 * it cannot touch the files the restarted one has opened.
 */
function open(dir: string, store: MetricStore, spillPoints = 1000, killed = false) {
  const spool = new DiskSpool({ dir: join(dir, 'spool') });
  const journal = new WriteJournal({ dir: join(dir, 'journal'), segmentBytes: 4096 });
  const slow = killed ? 600_000 : undefined;
  const buffer = new WriteBuffer({
    store,
    batchSize: 10,
    flushIntervalMs: slow ?? 20,
    initialBackoffMs: slow,
    maxBackoffMs: slow,
    spillPoints,
    spool,
    journal,
  });
  return { spool, journal, buffer };
}

describe('write journal', () => {
  it('a killed server: points acked but not written are written at the next start, written ones are not', async () => {
    const dir = await tempDir();
    const first = new RecordingStore();
    const a = open(dir, first, 1000, true);
    a.buffer.enqueue(batch(0, 10));
    await waitFor(() => first.written.length === 10, 3000, 'first batch written');
    await waitFor(() => a.journal.records === 0, 3000, 'written batch left the journal');

    // Storage stops answering; three more reports are acked (enqueued), then the process "dies":
    // no flush, no close — only what is on disk counts.
    first.mode = 'hung';
    a.buffer.enqueue(batch(10, 4));
    a.buffer.enqueue(batch(14, 3));
    a.buffer.enqueue(batch(17, 5));
    expect(a.journal.records).toBe(3);
    expect(a.journal.stats.pointsJournaled).toBe(22);

    const second = new RecordingStore();
    const b = open(dir, second);
    expect(b.journal.stats.pointsRecovered).toBe(12);
    b.buffer.start();
    await waitFor(() => second.written.length >= 12, 3000, 'recovered points written');
    expect(times(second.written)).toEqual(Array.from({ length: 12 }, (_, i) => 10 + i));
    expect(b.journal.records).toBe(0);
    expect(b.spool.stats.points).toBe(0);
    await b.buffer.close(1000);
    expect(readdirSync(join(dir, 'journal')).filter((f) => f.endsWith('.seg'))).toEqual([]);
  });

  it('a journal and a spool an earlier version wrote (points as JSON objects) are written at the next start', async () => {
    const dir = await tempDir();
    // Before points were stored encoded, both held the batches as JSON arrays of points.
    const legacy = (sub: string, batches: MetricPoint[][]) => {
      const log = new SegmentedLog({ dir: join(dir, sub), maxBytes: 1024 ** 2, segmentBytes: 64 * 1024 });
      for (const b of batches) log.append(Buffer.from(JSON.stringify(b), 'utf8'), { count: b.length });
      log.close();
    };
    legacy('spool', [batch(0, 4), batch(4, 3)]);
    legacy('journal', [batch(7, 5)]);
    const store = new RecordingStore();
    const b = open(dir, store);
    expect(b.journal.stats.pointsRecovered).toBe(5);
    b.buffer.start();
    await waitFor(() => store.written.length >= 12, 3000, 'earlier points written');
    expect(times(store.written)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    // Field for field as they were acked.
    expect(store.written[9]).toEqual(pt(9));
    expect(b.spool.stats.points).toBe(0);
    expect(b.journal.records).toBe(0);
    await b.buffer.close(1000);
  });

  it('points that go to the disk spool (backlog past its bound) leave the journal once nothing older is in memory', async () => {
    const dir = await tempDir();
    const store = new RecordingStore();
    store.mode = 'slow';
    const a = open(dir, store, 15, true);
    for (let i = 0; i < 6; i++) a.buffer.enqueue(batch(i * 5, 5));
    // The first batch (0…9) is in flight to the slow store; past 15 points in memory the rest
    // moved to the spool. Its journal records stay while the older batch in flight may still fail.
    expect(a.buffer.buffered).toBe(10);
    expect(a.spool.stats.points).toBe(20);
    expect(a.journal.records).toBe(6);
    // The write times out: the batch goes to the spool too, and every record leaves the journal.
    await waitFor(() => a.spool.stats.points === 30, 3000, 'the failed batch spooled');
    expect(a.journal.records).toBe(0);
    expect(a.journal.stats.pointsJournaled).toBe(30);

    // Five more acked, then killed: the journal hands them on, the spool its 30; none is missing.
    store.mode = 'hung';
    a.buffer.enqueue(batch(30, 5));
    const second = new RecordingStore();
    const b = open(dir, second, 15);
    expect(b.journal.stats.pointsRecovered).toBe(5);
    b.buffer.start();
    await waitFor(() => second.written.length >= 35, 5000, 'all points written');
    // (the failed batch went to the spool behind the newer points: order across batches differs)
    expect(times(second.written).sort((x, y) => x - y)).toEqual(Array.from({ length: 35 }, (_, i) => i));
    await b.buffer.close(1000);
  });

  it('without a spool, recovered points go to memory and stay journaled until written', async () => {
    const dir = await tempDir();
    const first = new RecordingStore();
    first.mode = 'hung';
    const journalOf = () => new WriteJournal({ dir: join(dir, 'journal'), segmentBytes: 4096 });
    const slow = { flushIntervalMs: 600_000, initialBackoffMs: 600_000, maxBackoffMs: 600_000 };
    const a = new WriteBuffer({ store: first, batchSize: 10, journal: journalOf(), ...slow });
    a.enqueue(batch(0, 4));
    a.enqueue(batch(4, 4));
    // Killed; the next run's storage is down too, and it is killed again before writing anything.
    const b = new WriteBuffer({ store: first, batchSize: 10, journal: journalOf(), ...slow });
    expect(b.buffered).toBe(8);
    b.enqueue(batch(8, 3));
    const second = new RecordingStore();
    const c = new WriteBuffer({ store: second, batchSize: 10, flushIntervalMs: 20, journal: journalOf() });
    expect(c.journal?.stats.pointsRecovered).toBe(11);
    c.start();
    await waitFor(() => second.written.length >= 11, 3000, 'recovered points written');
    expect(times(second.written)).toEqual(Array.from({ length: 11 }, (_, i) => i));
    await waitFor(() => c.journal?.records === 0, 3000, 'journal empty once written');
    await c.close(1000);
  });

  it('a clean shutdown leaves an empty journal (what was not written is in the spool)', async () => {
    const dir = await tempDir();
    const store = new RecordingStore();
    store.mode = 'slow';
    const a = open(dir, store);
    a.buffer.enqueue(batch(0, 7));
    await a.buffer.close(50);
    expect(a.spool.stats.points).toBe(7);
    const b = open(dir, new RecordingStore());
    expect(b.journal.stats.pointsRecovered).toBe(0);
    expect(b.spool.stats.points).toBe(7);
    await b.buffer.close(1000);
  });
});
