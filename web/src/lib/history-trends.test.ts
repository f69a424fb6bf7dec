import { describe, expect, it } from 'vitest';
import {
  energyByPeriod,
  historyCoverage,
  meanOf,
  periodMatrix,
  topKeys,
  usageTotals,
} from './history-trends.ts';

const W = 7 * 86_400_000;
const row = (week: number, key: string, busy: number, idle: number, kwh = 1) => ({
  periodStart: week * W,
  key,
  busyGpuHours: busy,
  idleHeldGpuHours: idle,
  gpuHours: busy + idle,
  energyKWh: kwh,
});
const rows = [row(1, 'b', 10, 2), row(0, 'a', 5, 5), row(1, 'a', 30, 0, 3), row(1, 'c', 0, 4)];

describe('trends aggregation', () => {
  it('builds a key × period matrix with zeros for missing cells, biggest key first', () => {
    const m = periodMatrix(rows);
    expect(m.periods).toEqual([0, W]);
    expect(m.keys).toEqual(['a', 'b', 'c']);
    expect(m.busy.get('a')).toEqual([5, 30]);
    expect(m.idle.get('b')).toEqual([0, 2]);
    expect(m.busy.get('c')).toEqual([0, 0]);
  });

  it('ranks top keys and sums energy per period', () => {
    expect(topKeys(rows, 2)).toEqual([
      { key: 'a', busy: 35, idle: 5, total: 40, energyKWh: 4 },
      { key: 'b', busy: 10, idle: 2, total: 12, energyKWh: 1 },
    ]);
    expect(energyByPeriod(rows)).toEqual([
      { periodStart: 0, kwh: 1 },
      { periodStart: W, kwh: 5 },
    ]);
    expect(usageTotals(rows)).toEqual({ gpuHours: 56, idle: 11, idleShare: (100 * 11) / 56, energyKWh: 6 });
    expect(usageTotals([]).idleShare).toBeNull();
  });

  it('tells a short history from a full one', () => {
    const day = 86_400_000;
    const to = 30 * day;
    const full = historyCoverage(
      [
        [0, null],
        [3600_000, 5],
        [to, 6],
      ],
      0,
      to,
      3600_000,
    );
    expect(full).toMatchObject({ first: 3600_000, short: false, days: 29 });
    const short = historyCoverage([[to - 2 * day, 5]], 0, to, 3600_000);
    expect(short).toEqual({ first: to - 2 * day, short: true, days: 2 });
    expect(historyCoverage([], 0, to, 1)).toEqual({ first: null, short: true, days: 0 });
    expect(
      meanOf([
        [0, 10],
        [1, null],
        [2, 20],
      ]),
    ).toBe(15);
    expect(meanOf([])).toBeNull();
  });
});
