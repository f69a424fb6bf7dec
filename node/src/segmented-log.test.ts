// The segmented log on a real file system: order, removal, restart, torn records, bounds.

import { execFileSync } from 'node:child_process';
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
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRecord, SEGMENT_MAGIC, SegmentedLog, scanSegment } from './segmented-log.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'gpupulse-log-'));
  dirs.push(d);
  return d;
}
const segs = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
const text = (b: Buffer | null) => b?.toString('utf8');
const payload = (i: number, pad = 0) => Buffer.from(`record ${i}${'.'.repeat(pad)}`);
const T0 = 1_750_000_000_000;
/** Root with the right to mount (CI runs as root): a real tiny tmpfs to fill. */
const canMountTmpfs = (() => {
  if (process.getuid?.() !== 0) return false;
  const d = mkdtempSync(join(tmpdir(), 'gpupulse-log-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d], { stdio: 'pipe' });
    execFileSync('umount', [d]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
})();

describe('SegmentedLog', () => {
  it('appends in order, reads by id, removes, deletes a segment once nothing in it is live', () => {
    const dir = tmp();
    const log = new SegmentedLog({ dir, maxBytes: 1 << 20, segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) expect(log.append(payload(i, 50), { ts: T0 + i, count: 3 })).toBe(i);
    expect(log.records).toBe(40);
    expect(log.count).toBe(120);
    expect(log.newestId).toBe(39);
    expect(text(log.read(7))).toBe(`record 7${'.'.repeat(50)}`);
    expect([...log.live()].slice(0, 3).map((r) => r.id)).toEqual([0, 1, 2]);
    const before = segs(dir).length;
    expect(before).toBeGreaterThan(3);
    expect(log.remove([0, 0, 1, 999])).toBe(2);
    expect(log.first()?.id).toBe(2);
    expect(log.remove(Array.from({ length: 20 }, (_, i) => i))).toBe(18);
    expect(segs(dir).length).toBeLessThan(before);
    expect(log.first()).toMatchObject({ id: 20, ts: T0 + 20, count: 3 });
    expect(log.has(19)).toBe(false);
    expect(log.read(19)).toBeNull();
    // ids increase: an id at or below the last one is a programming error
    expect(() => log.append(payload(0), { id: 5 })).toThrow(/not above/);
    log.close();
  });

  it('survives a restart: live records, removals (ack files), and, when persisted, the next id', () => {
    const dir = tmp();
    const a = new SegmentedLog({ dir, maxBytes: 1 << 20, persistNextId: true });
    for (let i = 0; i < 10; i++) a.append(payload(i), { id: 100 + i, ts: T0 + i });
    a.remove([100, 102, 104]);
    a.close();
    const b = new SegmentedLog({ dir, maxBytes: 1 << 20, persistNextId: true });
    expect(b.opened).toMatchObject({ segments: 1, records: 7, count: 7, tornRecords: 0, nextId: 110 });
    expect([...b.live()].map((r) => r.id)).toEqual([101, 103, 105, 106, 107, 108, 109]);
    expect(text(b.read(101))).toBe('record 1');
    b.remove([101, 103, 105, 106, 107, 108, 109]);
    expect(segs(dir)).toEqual([]);
    b.close();
    expect(new SegmentedLog({ dir, maxBytes: 1 << 20, persistNextId: true }).nextId).toBe(110);
    // without persistence an empty log starts over (the server's batches need no global ids)
    expect(new SegmentedLog({ dir: tmp(), maxBytes: 1 << 20 }).nextId).toBe(0);
  });

  it('a torn last record (crash mid-write) is skipped, counted and logged; the rest is kept', () => {
    const dir = tmp();
    const a = new SegmentedLog({ dir, maxBytes: 1 << 20, persistNextId: true });
    for (let i = 0; i < 5; i++) a.append(payload(i), { ts: T0 });
    a.close();
    const path = join(dir, segs(dir)[0] as string);
    truncateSync(path, statSync(path).size - 3);
    const warned: object[] = [];
    const b = new SegmentedLog({
      dir,
      maxBytes: 1 << 20,
      persistNextId: true,
      logger: { warn: (o) => warned.push(o), error: () => {} },
    });
    expect(b.opened).toMatchObject({ records: 4, tornRecords: 1 });
    expect(warned).toHaveLength(1);
    expect([...b.live()].map((r) => r.id)).toEqual([0, 1, 2, 3]);
    // new records go to a new segment, after the good ones
    expect(b.append(payload(5), { ts: T0 })).toBe(5);
    expect([...b.live()].map((r) => r.id)).toEqual([0, 1, 2, 3, 5]);
    b.close();
  });

  it('garbage (bad CRC, absurd length, no magic) ends a scan without throwing', () => {
    const dir = tmp();
    const a = new SegmentedLog({ dir, maxBytes: 1 << 20 });
    for (let i = 0; i < 3; i++) a.append(payload(i));
    a.close();
    const [seg] = segs(dir);
    // a record whose CRC does not match (one flipped payload byte)
    const bad = encodeRecord({ id: 3, ts: T0, count: 1 }, payload(3));
    bad.writeUInt8((bad.at(-1) as number) ^ 0xff, bad.length - 1);
    appendFileSync(join(dir, seg as string), bad);
    writeFileSync(join(dir, 'log-0000000000000099.seg'), Buffer.alloc(100, 0x41));
    const b = new SegmentedLog({ dir, maxBytes: 1 << 20 });
    expect(b.opened).toMatchObject({ records: 3, tornRecords: 2 });
    b.close();
    expect(scanSegment(Buffer.alloc(0))).toMatchObject({ records: [], torn: false });
    const absurd = Buffer.concat([SEGMENT_MAGIC, Buffer.from([0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(40)]);
    expect(scanSegment(absurd)).toMatchObject({ records: [], torn: true, validBytes: SEGMENT_MAGIC.length });
  });

  it('bounded by size: the oldest segments are dropped and counted; the newest stay', () => {
    const dir = tmp();
    const drops: [string, number, number][] = [];
    const log = new SegmentedLog({
      dir,
      maxBytes: 16 * 1024,
      segmentBytes: 2048,
      onDrop: (reason, records, count) => drops.push([reason, records, count]),
    });
    for (let i = 0; i < 200; i++) log.append(payload(i, 200), { count: 2 });
    expect(log.bytes).toBeLessThanOrEqual(16 * 1024);
    const dropped = drops.reduce((n, d) => n + d[1], 0);
    expect(dropped).toBeGreaterThan(0);
    expect(drops.every((d) => d[0] === 'size' && d[2] === 2 * d[1])).toBe(true);
    expect(log.dropped).toEqual({ records: dropped, count: 2 * dropped });
    expect(log.records + dropped).toBe(200);
    expect(log.first()?.id).toBe(dropped); // exactly the oldest ones went
    expect(log.newestId).toBe(199);
    log.close();
  });

  it('bounded by age: records older than maxAgeMs are dropped and counted', () => {
    const dir = tmp();
    let now = T0;
    const log = new SegmentedLog({
      dir,
      maxBytes: 1 << 20,
      maxAgeMs: 10_000,
      segmentBytes: 512,
      now: () => now,
    });
    for (let i = 0; i < 30; i++) {
      now = T0 + i * 1000;
      log.append(payload(i, 40), { ts: now });
    }
    expect(log.dropped.records).toBeGreaterThan(0);
    expect(log.records + log.dropped.records).toBe(30);
    for (const r of log.live()) expect(r.ts).toBeGreaterThanOrEqual(now - 10_000 - 5_000);
    log.close();
    // on open too: a day later everything is past the bound
    now += 86_400_000;
    const later = new SegmentedLog({ dir, maxBytes: 1 << 20, maxAgeMs: 10_000, now: () => now });
    expect(later.records).toBe(0);
    expect(segs(dir)).toEqual([]);
  });

  // A full file system: tmpfs counts in 4 KiB pages, so a record that crosses into a page there is
  // no room for is written in part (a short write), not refused. Where the disk ends inside a
  // segment depends on what else is on it: a few sizes of another file. Needs root for the mount.
  it.runIf(canMountTmpfs)(
    'a full disk with short writes: every record kept reads back exactly; the oldest dropped and counted',
    () => {
      for (const otherPages of [0, 1, 2, 3]) {
        const dir = tmp();
        // 256 KiB: segments of an eighth hold ~10 records, so the disk ends inside a segment
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
        try {
          if (otherPages > 0) writeFileSync(join(dir, 'other'), Buffer.alloc(otherPages * 4096 - 100, 1));
          const drops: [string, number][] = [];
          const log = new SegmentedLog({
            dir,
            maxBytes: 64 << 20, // the disk fills, not this bound
            onDrop: (reason, records) => drops.push([reason, records]),
          });
          const sent = new Map<number, string>();
          // 3,001-byte payloads: records do not line up with pages
          for (let i = 0; i < 300; i++) {
            const body = `${i}:`.padEnd(3001, String.fromCharCode(97 + (i % 26)));
            const id = log.append(Buffer.from(body));
            if (id !== null) sent.set(id, body);
          }
          const where = `another file of ${otherPages} pages`;
          expect(drops.length, where).toBeGreaterThan(0);
          expect(drops.every(([reason]) => reason === 'disk full')).toBe(true);
          const live = [...log.live()].map((r) => r.id);
          expect(live.length).toBeGreaterThan(5);
          for (const id of live) expect(text(log.read(id)), `${where}: record ${id}`).toBe(sent.get(id));
          expect(log.dropped.records + live.length).toBe(sent.size);
          expect(live.at(-1)).toBe(299); // the newest kept, the oldest gone
          log.close();
          // and after a restart: the same records, none torn
          const again = new SegmentedLog({ dir, maxBytes: 64 << 20 });
          expect([...again.live()].map((r) => r.id)).toEqual(live);
          for (const id of live) expect(text(again.read(id))).toBe(sent.get(id));
          again.close();
        } finally {
          execFileSync('umount', [dir]);
        }
      }
    },
  );
});
