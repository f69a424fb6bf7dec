import { describe, expect, it } from 'vitest';
import { applyProcessUpdate, ProcessDeltaEncoder, type ProcessUpdate, processKey } from './process-delta.ts';
import { type GpuProcess, SampleSchema } from './schemas.ts';

const p = (pid: number, mem: number | null, gpuUuid = 'GPU-a'): GpuProcess => ({
  gpuUuid,
  pid,
  usedMemoryMiB: mem,
  name: `p${pid}`,
  startedAt: 1000 + pid,
});

/** A small deterministic PRNG (mulberry32): the same runs every time, many shapes of change. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The next interval's list: processes end, start (pids reused across GPUs), and move their memory. */
function evolve(list: readonly GpuProcess[], r: () => number): GpuProcess[] {
  const out: GpuProcess[] = [];
  for (const q of list) {
    if (r() < 0.1) continue; // ended
    const x = r();
    const mem =
      q.usedMemoryMiB === null || x < 0.5
        ? q.usedMemoryMiB
        : x < 0.6
          ? null
          : Math.round((q.usedMemoryMiB || 1) * (0.8 + r() * 0.4));
    out.push({ ...q, usedMemoryMiB: mem });
  }
  const starts = Math.floor(r() * 3);
  for (let i = 0; i < starts; i++) {
    const gpu = `GPU-${'abcd'[Math.floor(r() * 4)]}`;
    const pid = 100 + Math.floor(r() * 30);
    if (out.some((q) => processKey(q) === processKey({ gpuUuid: gpu, pid }))) continue;
    out.push(p(pid, r() < 0.1 ? null : Math.floor(r() * 80_000), gpu));
  }
  return out;
}

const byKey = (xs: readonly GpuProcess[]) =>
  [...xs].sort((a, b) => processKey(a).localeCompare(processKey(b)));
/** As the server gets it: JSON on the wire, validated by the sample schema. */
const wire = (u: ProcessUpdate): ProcessUpdate => {
  const s = SampleSchema.parse(
    JSON.parse(JSON.stringify({ seq: 1, ts: 1e12, gpuCollector: 'ok', gpus: [], host: null, ...u })),
  );
  return { processes: s.processes, processesMode: s.processesMode, processesGone: s.processesGone };
};

describe('process deltas: encode (agent) → apply (server)', () => {
  it.each([1, 2, 3, 4, 5])(
    'round trip, seed %i: with every change resent, the applied list is the list',
    (seed) => {
      const r = rng(seed);
      const enc = new ProcessDeltaEncoder({ fullEveryMs: 30_000, memoryChange: 0 });
      let list: GpuProcess[] = [];
      let applied: readonly GpuProcess[] = [];
      const modes = new Set<string>();
      for (let t = 0; t < 400_000; t += 1000) {
        list = evolve(list, r);
        const u = enc.next(list, t);
        modes.add(u.processesMode ?? 'none');
        applied = applyProcessUpdate(applied, wire(u));
        expect(byKey(applied), `t=${t}`).toEqual(byKey(list));
      }
      expect([...modes].sort()).toEqual(['delta', 'full', 'none']);
    },
  );

  it('round trip with the default 5 % memory tolerance: same processes, memory within 5 % of the list', () => {
    const r = rng(42);
    const enc = new ProcessDeltaEncoder();
    let list: GpuProcess[] = [];
    let applied: readonly GpuProcess[] = [];
    let sentBytes = 0;
    let fullBytes = 0;
    for (let t = 0; t < 600_000; t += 1000) {
      list = evolve(list, r);
      const u = enc.next(list, t);
      sentBytes += JSON.stringify(u).length;
      fullBytes += JSON.stringify({ processes: list }).length;
      applied = applyProcessUpdate(applied, wire(u));
      const want = byKey(list);
      const got = byKey(applied);
      expect(got.map(processKey)).toEqual(want.map(processKey));
      got.forEach((g, i) => {
        const w = want[i]!;
        expect({ ...g, usedMemoryMiB: 0 }).toEqual({ ...w, usedMemoryMiB: 0 });
        if (g.usedMemoryMiB === null || w.usedMemoryMiB === null)
          expect(g.usedMemoryMiB).toBe(w.usedMemoryMiB);
        else expect(Math.abs(w.usedMemoryMiB - g.usedMemoryMiB)).toBeLessThanOrEqual(0.05 * g.usedMemoryMiB);
      });
    }
    expect(sentBytes).toBeLessThan(fullBytes);
  });

  it('a lost update is repaired by the next full list (forceFull)', () => {
    const enc = new ProcessDeltaEncoder();
    let applied = applyProcessUpdate([], enc.next([p(1, 10)], 0));
    enc.next([p(1, 10), p(2, 20)], 1000); // lost on the way
    applied = applyProcessUpdate(applied, enc.next([p(1, 10), p(2, 20), p(3, 30)], 2000));
    expect(byKey(applied)).toEqual([p(1, 10), p(3, 30)]); // p2 missing: the delta was lost
    enc.forceFull();
    applied = applyProcessUpdate(applied, enc.next([p(1, 10), p(2, 20), p(3, 30)], 3000));
    expect(byKey(applied)).toEqual([p(1, 10), p(2, 20), p(3, 30)]);
  });

  it('full first, then only changes (new, gone, memory moved > 5 %), nothing when nothing changed, full every minute', () => {
    const t = new ProcessDeltaEncoder({ fullEveryMs: 60_000 });
    expect(t.next([p(1, 1000), p(2, 500)], 0)).toEqual({
      processes: [p(1, 1000), p(2, 500)],
      processesMode: 'full',
    });
    expect(t.next([p(1, 1040), p(2, 500)], 1000)).toEqual({}); // 4 % move: not a change
    expect(t.next([p(1, 1060), p(2, 500), p(3, 10)], 2000)).toEqual({
      processes: [p(1, 1060), p(3, 10)],
      processesMode: 'delta',
    });
    expect(t.next([p(1, 1060), p(3, null)], 3000)).toEqual({
      processes: [p(3, null)],
      processesMode: 'delta',
      processesGone: [{ gpuUuid: 'GPU-a', pid: 2 }],
    });
    // the same pid on another GPU is another process
    expect(t.next([p(1, 1060), p(3, null), p(1, 5, 'GPU-b')], 4000).processes).toEqual([p(1, 5, 'GPU-b')]);
    expect(t.next([p(1, 1060)], 60_000)).toEqual({ processes: [p(1, 1060)], processesMode: 'full' });
    expect(t.next([], 61_000)).toEqual({
      processes: [],
      processesMode: 'delta',
      processesGone: [{ gpuUuid: 'GPU-a', pid: 1 }],
    });
    t.forceFull();
    expect(t.next([], 62_000)).toEqual({ processes: [], processesMode: 'full' });
  });

  it('apply: nothing keeps the same list object; a full list replaces; a delta keyed by GPU and pid', () => {
    const prev = [p(1, 10), p(1, 10, 'GPU-b')];
    expect(applyProcessUpdate(prev, {})).toBe(prev);
    expect(applyProcessUpdate(prev, { processesMode: 'delta', processes: [] })).toBe(prev);
    expect(applyProcessUpdate(prev, { processes: [p(9, 1)] })).toEqual([p(9, 1)]);
    expect(
      applyProcessUpdate(prev, {
        processesMode: 'delta',
        processes: [p(1, 99, 'GPU-b')],
        processesGone: [{ gpuUuid: 'GPU-a', pid: 1 }],
      }),
    ).toEqual([p(1, 99, 'GPU-b')]);
  });
});
