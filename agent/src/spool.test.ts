// The disk spool on a real filesystem: bounds, restart, torn records, ack log, and the move of an
// earlier agent version's spool into the current format.
import {
  appendFileSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Sample } from '@gpupulse/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskSpool, scanLegacySegment } from './spool.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'gpupulse-spool-'));
  dirs.push(d);
  return d;
}
const T0 = Date.now();
function sample(seq: number, ts = T0 + seq * 1000, pad = 0): Sample {
  return {
    seq,
    ts,
    gpuCollector: 'ok',
    gpus: [],
    host: {
      cpuPercent: seq,
      memoryUsedBytes: null,
      memoryTotalBytes: null,
      load1: null,
      load5: null,
      load15: null,
      netRxBytesPerSec: null,
      netTxBytesPerSec: null,
      uptimeSeconds: null,
    },
    ...(pad ? { gpuError: 'x'.repeat(pad) } : {}),
  };
}
const segments = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();

describe('DiskSpool', () => {
  it('queues, serves live and oldest, removes acked, deletes fully acked segments', () => {
    const dir = tmp();
    const q = new DiskSpool({ dir, segmentBytes: 4096 });
    for (let i = 0; i < 50; i++) q.push(sample(i, undefined, 200));
    expect(q.size).toBe(50);
    expect(q.newest()?.seq).toBe(49);
    expect(q.oldest(3).map((s) => s.seq)).toEqual([0, 1, 2]);
    expect(q.oldest(2, 0).map((s) => s.seq)).toEqual([1, 2]);
    expect(q.bytes).toBeGreaterThan(50 * 200);
    const before = segments(dir).length;
    expect(before).toBeGreaterThan(2);
    expect(q.remove(Array.from({ length: 25 }, (_, i) => i))).toBe(25);
    expect(q.size).toBe(25);
    expect(segments(dir).length).toBeLessThan(before);
    expect(q.oldest(1)[0]?.seq).toBe(25);
    expect(q.remove([25, 25, 999])).toBe(1);
    expect(q.has(26)).toBe(true);
    expect(q.has(25)).toBe(false);
  });

  it('survives a restart: unacked samples, ack log, sequence numbers continue', async () => {
    const dir = tmp();
    const a = new DiskSpool({ dir });
    for (let i = 0; i < 10; i++) a.push(sample(i));
    a.remove([0, 2, 4]);
    await a.close();
    const b = new DiskSpool({ dir });
    expect(b.size).toBe(7);
    expect(b.nextSeq).toBe(10);
    expect(b.oldest(100).map((s) => s.seq)).toEqual([1, 3, 5, 6, 7, 8, 9]);
    expect(b.oldest(1)[0]).toEqual(sample(1));
    // everything acked: files go, but the next seq is remembered
    b.remove([1, 3, 5, 6, 7, 8, 9]);
    expect(segments(dir)).toEqual([]);
    await b.close();
    const c = new DiskSpool({ dir });
    expect(c.size).toBe(0);
    expect(c.nextSeq).toBe(10);
  });

  it('a torn last record (crash mid-write) is detected and skipped, not fatal', async () => {
    const dir = tmp();
    const a = new DiskSpool({ dir });
    for (let i = 0; i < 5; i++) a.push(sample(i));
    await a.close();
    const [seg] = segments(dir);
    const path = join(dir, seg as string);
    truncateSync(path, statSync(path).size - 7);
    const b = new DiskSpool({ dir });
    expect(b.opened.tornRecords).toBe(1);
    expect(b.size).toBe(4);
    expect(b.oldest(10).map((s) => s.seq)).toEqual([0, 1, 2, 3]);
    // the next sample may reuse seq 4: it was never stored
    expect(b.nextSeq).toBe(5);
    b.push(sample(5));
    expect(b.size).toBe(5);
  });

  it('garbage in a segment (bad CRC, absurd length) ends its scan without throwing', () => {
    const dir = tmp();
    const a = new DiskSpool({ dir });
    for (let i = 0; i < 3; i++) a.push(sample(i));
    const [seg] = segments(dir);
    appendFileSync(join(dir, seg as string), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4]));
    writeFileSync(join(dir, 'log-0000000000000099.seg'), Buffer.alloc(100, 0x41));
    const b = new DiskSpool({ dir });
    expect(b.opened.tornRecords).toBe(2);
    expect(b.size).toBe(3);
  });

  it('bounded by size: the oldest segment is dropped and counted', () => {
    const dir = tmp();
    const q = new DiskSpool({ dir, maxBytes: 64 * 1024, segmentBytes: 8 * 1024 });
    for (let i = 0; i < 200; i++) q.push(sample(i, undefined, 900));
    expect(q.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(q.dropped).toBeGreaterThan(0);
    expect(q.size + q.dropped).toBe(200);
    const oldest = q.oldest(1)[0]?.seq ?? -1;
    expect(oldest).toBe(q.dropped);
    expect(q.newest()?.seq).toBe(199);
  });

  it('bounded by age: samples older than maxAge are dropped and counted', () => {
    const dir = tmp();
    let now = T0;
    const q = new DiskSpool({ dir, maxAgeMs: 10_000, segmentBytes: 4096, now: () => now });
    for (let i = 0; i < 30; i++) {
      now = T0 + i * 1000;
      q.push(sample(i, now, 300));
    }
    expect(q.dropped).toBeGreaterThan(0);
    for (const s of q.oldest(100)) expect(s.ts).toBeGreaterThanOrEqual(now - 10_000 - 10_000);
    expect(q.size + q.dropped).toBe(30);
  });
});

/** A segment file in the spool format of agents before @gpupulse/node (24-byte header). */
function legacySegment(samples: Sample[]): Buffer {
  return Buffer.concat(
    samples.map((s) => {
      const payload = Buffer.from(JSON.stringify(s));
      const rec = Buffer.alloc(24 + payload.length);
      rec.writeUInt32LE(payload.length, 0);
      rec.writeDoubleLE(s.seq, 8);
      rec.writeDoubleLE(s.ts, 16);
      payload.copy(rec, 24);
      rec.writeUInt32LE(crc32(rec.subarray(8)), 4);
      return rec;
    }),
  );
}

describe('DiskSpool: upgrade from the earlier spool format', () => {
  it('moves unacked samples of an old spool into the log once: nothing lost, nothing twice, seq continues', async () => {
    const dir = tmp();
    // an old agent's spool: two segments, some samples acked, the next seq persisted
    writeFileSync(
      join(dir, 'seg-0000000000000010.log'),
      legacySegment([10, 11, 12, 13].map((i) => sample(i))),
    );
    writeFileSync(join(dir, 'seg-0000000000000010.ack'), '10\n12\n');
    const second = legacySegment([14, 15, 16].map((i) => sample(i)));
    // and a torn last record (the old agent was killed mid-write)
    writeFileSync(
      join(dir, 'seg-0000000000000014.log'),
      Buffer.concat([second, Buffer.from([9, 0, 0, 0, 1, 2])]),
    );
    writeFileSync(join(dir, 'next-seq'), '20');
    expect(scanLegacySegment(second).records.map((r) => r.seq)).toEqual([14, 15, 16]);

    const a = new DiskSpool({ dir });
    expect(a.opened).toMatchObject({ migrated: 5, samples: 5, tornRecords: 1, nextSeq: 20 });
    expect(a.oldest(100)).toEqual([11, 13, 14, 15, 16].map((i) => sample(i)));
    expect(readdirSync(dir).filter((n) => n.startsWith('seg-') || n === 'next-seq')).toEqual([]);
    a.push(sample(20));
    a.remove([11]);
    await a.close();

    // opened again: nothing is moved twice, the acked sample stays acked
    const b = new DiskSpool({ dir });
    expect(b.opened).toMatchObject({ migrated: 0, samples: 5, nextSeq: 21 });
    expect(b.oldest(100).map((s) => s.seq)).toEqual([13, 14, 15, 16, 20]);
    await b.close();
  });

  it('an old spool with everything acked still hands on its next seq', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'next-seq'), '4242');
    const s = new DiskSpool({ dir });
    expect(s.nextSeq).toBe(4242);
    expect(s.size).toBe(0);
  });
});
