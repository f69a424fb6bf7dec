import type { HistoryResponse } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  capacityFor,
  expectedTier,
  HISTORY_RANGES,
  historyUrl,
  LiveSeries,
  normalizeMetric,
  PointRing,
  parseHistory,
  pointsForGpu,
  rangeMs,
  stepForRange,
} from './history.ts';

describe('ranges, tiers and steps', () => {
  it('maps every range to the tier the server picks', () => {
    expect(HISTORY_RANGES.map((r) => [r.id, expectedTier(r.ms)])).toEqual([
      ['15m', 'raw'],
      ['1h', 'raw'],
      ['6h', 'raw'],
      ['24h', '1m'],
      ['7d', '1m'],
      ['30d', '1h'],
    ]);
  });

  it('picks round steps within the point budget and never finer than the tier', () => {
    for (const r of HISTORY_RANGES) {
      const step = stepForRange(r.ms);
      expect(r.ms / step).toBeLessThanOrEqual(720);
      expect(step % 1000).toBe(0);
    }
    expect(stepForRange(rangeMs('15m'))).toBe(2000);
    expect(stepForRange(rangeMs('24h'))).toBe(120_000);
    expect(stepForRange(rangeMs('30d'))).toBe(3_600_000);
  });

  it('bounds the ring capacity', () => {
    expect(capacityFor(rangeMs('30d'), 3_600_000)).toBe(1000);
    expect(capacityFor(rangeMs('15m'), 1000)).toBe(900 + 3600 + 2);
  });
});

describe('historyUrl', () => {
  it('encodes hostile ids and joins metrics', () => {
    const url = historyUrl({
      scope: 'node',
      id: `<img src=x onerror=alert(1)> "q" & 노드`,
      metrics: ['utilizationGpuPercent', 'memoryUsedMiB'],
      from: 1000.7,
      to: 2000,
      stepMs: 1000,
    });
    expect(url.startsWith('/api/v1/history?scope=node&id=')).toBe(true);
    const p = new URL(url, 'http://x').searchParams;
    expect(p.get('id')).toBe(`<img src=x onerror=alert(1)> "q" & 노드`);
    expect(p.get('metrics')).toBe('utilization,memory');
    expect(p.get('from')).toBe('1000');
    expect(p.get('step')).toBe('1000');
    expect(url).not.toContain('<');
  });

  it('omits the id for the cluster', () => {
    expect(historyUrl({ scope: 'cluster', id: null, metrics: ['x'], from: 0, to: 1 })).toBe(
      '/api/v1/history?scope=cluster&metrics=x&from=0&to=1',
    );
  });
});

describe('parseHistory', () => {
  const res: HistoryResponse = {
    scope: 'node',
    id: 'n1',
    tier: 'raw',
    from: 0,
    to: 10_000,
    stepMs: 1000,
    series: [
      {
        metric: 'utilization_gpu',
        key: 'GPU-a',
        points: [
          [2000, 5],
          [1000, 4],
        ],
      },
      { metric: 'memory', key: '1', points: [[1000, 10]] },
    ],
  };
  it('accepts Telegraf field names, sorts points, and finds a GPU by uuid or index', () => {
    expect(normalizeMetric('temperature_gpu')).toBe('temperatureCelsius');
    expect(normalizeMetric('clocks_memory')).toBe('clocksMemoryMHz');
    expect(normalizeMetric('gpus_in_use')).toBe('gpus_in_use');
    const parsed = parseHistory(res);
    expect(pointsForGpu(parsed, 'utilizationGpuPercent', { uuid: 'GPU-a', index: 0 })).toEqual([
      [1000, 4],
      [2000, 5],
    ]);
    expect(pointsForGpu(parsed, 'memoryUsedMiB', { uuid: 'GPU-b', index: 1 })).toEqual([[1000, 10]]);
    expect(pointsForGpu(parsed, 'memoryUsedMiB', { uuid: 'GPU-c', index: 2 })).toBeUndefined();
  });

  it('takes key-less series for a single-GPU scope', () => {
    const parsed = parseHistory({
      ...res,
      scope: 'gpu',
      series: [{ metric: 'power_draw', key: null, points: [[1, 2]] }],
    });
    expect(pointsForGpu(parsed, 'powerDrawWatts', { uuid: 'GPU-z', index: 4 })).toEqual([[1, 2]]);
  });
});

describe('PointRing', () => {
  it('keeps the newest points up to its capacity and counts drops', () => {
    const r = new PointRing(3);
    for (let i = 1; i <= 5; i++) r.push(i, i * 10);
    expect(r.toArray()).toEqual([
      [3, 30],
      [4, 40],
      [5, 50],
    ]);
    expect(r.dropped).toBe(2);
    expect(r.lastTime).toBe(5);
    r.push(6, null);
    expect(r.toArray().at(-1)).toEqual([6, null]);
    expect(r.lastValue()).toBeNull();
    expect(() => new PointRing(0)).toThrow();
  });
});

describe('LiveSeries: history continued by live values', () => {
  const hist = (from: number, to: number, step = 1000) => {
    const pts: [number, number][] = [];
    for (let t = from; t <= to; t += step) pts.push([t, t / 1000]);
    return pts;
  };

  it('appends live values after the history without gaps or duplicates', () => {
    const s = new LiveSeries({ capacity: 100, stepMs: 1000 });
    s.setHistory(hist(1000, 10_000));
    expect(s.appendLive(9_500, 99)).toBe(false); // inside the history
    expect(s.appendLive(10_000, 99)).toBe(false); // the history's last point
    expect(s.appendLive(11_200, 11)).toBe(true);
    expect(s.appendLive(11_200, 11)).toBe(true); // same bucket: mean, no new point
    expect(s.appendLive(12_000, 12)).toBe(true);
    const pts = s.points();
    const times = pts.map(([t]) => t);
    expect(times).toEqual([...hist(1000, 10_000).map(([t]) => t), 11_000, 12_000]);
    expect(new Set(times).size).toBe(times.length);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
  });

  it('averages values within one bucket', () => {
    const s = new LiveSeries({ capacity: 10, stepMs: 60_000 });
    s.appendLive(60_000, 10);
    s.appendLive(61_000, 20);
    s.appendLive(62_000, null);
    s.appendLive(63_000, 30);
    expect(s.points()).toEqual([[60_000, 20]]);
    expect(s.appendLive(1000, 5)).toBe(false); // older than the newest bucket
  });

  it('keeps live values that arrived while history was loading', () => {
    const s = new LiveSeries({ capacity: 100, stepMs: 1000 });
    s.appendLive(20_000, 1);
    s.appendLive(21_000, 2);
    s.appendLive(22_000, 3);
    // the response ends at 21 s (the request was sent then)
    s.setHistory(hist(10_000, 21_000));
    const pts = s.points();
    expect(pts.at(-1)).toEqual([22_000, 3]);
    expect(pts.filter(([t]) => t === 21_000)).toEqual([[21_000, 21]]); // history wins its own points
    expect(s.historyEnd).toBe(21_000);
    expect(s.appendLive(23_000, 4)).toBe(true);
  });

  it('ignores unsorted or duplicate history points', () => {
    const s = new LiveSeries({ capacity: 10, stepMs: 1000 });
    s.setHistory([
      [1000, 1],
      [1000, 9],
      [3000, 3],
      [2000, 2],
    ]);
    expect(s.points()).toEqual([
      [1000, 1],
      [3000, 3],
    ]);
  });

  it('stays bounded while live values keep coming for days', () => {
    const s = new LiveSeries({ capacity: 500, stepMs: 1000 });
    s.setHistory(hist(1000, 300_000));
    for (let t = 301_000; t < 301_000 + 86_400_000 / 10; t += 1000) s.appendLive(t, 1);
    expect(s.length).toBe(500);
    expect(s.dropped).toBeGreaterThan(0);
    const pts = s.points();
    for (let i = 1; i < pts.length; i++) expect(pts[i]![0]).toBeGreaterThan(pts[i - 1]![0]);
  });

  it('a range change rebuilds with the new step', () => {
    const s = new LiveSeries({ capacity: 100, stepMs: 1000 });
    s.setHistory([[0, 1]], 60_000);
    expect(s.appendLive(30_000, 5)).toBe(false); // bucket 0 is history
    expect(s.appendLive(61_000, 5)).toBe(true);
    expect(s.points()).toEqual([
      [0, 1],
      [60_000, 5],
    ]);
  });
});
