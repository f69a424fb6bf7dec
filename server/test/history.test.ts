import { HistoryResponseSchema, UsageResponseSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { chooseStep, chooseTier, MAX_POINTS, periodStart, queryHistory } from '../src/history/history-api.ts';
import { type AggQuery, buildInfluxQL } from '../src/history/query-backend.ts';
import { MemoryStore } from '../src/storage/memory-store.ts';
import { bearer, startServerWithAccess } from './access-helpers.ts';
import { connectAgent, gpu, sample, waitFor } from './helpers.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('tier and step selection', () => {
  const now = Date.UTC(2026, 5, 1);
  it.each([
    [HOUR, 0, 'raw'],
    [6 * HOUR, 0, 'raw'],
    [6 * HOUR + 1, 0, '1m'],
    [14 * DAY, 0, '1m'],
    [14 * DAY + 1, 0, '1h'],
    [90 * DAY, 0, '1h'],
    // an hour long ago: the raw tier has expired (14 d), the 1-minute one (180 d) too
    [HOUR, 20 * DAY, '1m'],
    [HOUR, 200 * DAY, '1h'],
  ] as const)('span %i ms ending %i ms ago → %s', (span, ago, tier) => {
    expect(chooseTier(now - ago - span, now - ago, now)).toBe(tier);
  });
  it('steps are nice, at least the tier minimum, and bound the points', () => {
    expect(chooseStep(HOUR, 1000, null)).toBe(5000);
    expect(chooseStep(6 * HOUR, 1000, null)).toBe(15_000);
    expect(chooseStep(90 * DAY, HOUR, null)).toBe(2 * HOUR);
    expect(chooseStep(HOUR, MIN, 1000)).toBe(MIN);
    expect(chooseStep(HOUR, 1000, 7 * MIN)).toBe(10 * MIN);
    expect((90 * DAY) / chooseStep(90 * DAY, HOUR, null)).toBeLessThanOrEqual(MAX_POINTS);
  });
  it('InfluxQL is built with quoted identifiers and strings only', () => {
    const q = buildInfluxQL(
      {
        measurement: 'nvidia_smi_1m',
        rp: 'rp_1m',
        fields: [{ field: 'utilization_gpu_mean', fn: 'mean' }],
        where: { host: `a'b"c\\d\ne` },
        from: 0,
        to: DAY,
        stepMs: DAY,
        offsetMs: -9 * HOUR,
        groupBy: ['uuid'],
        fill: 'null',
      },
      'gp"db',
    );
    expect(q).toBe(
      // The tag value as line protocol stored it: the newline became `?` (see line-protocol.ts).
      `SELECT mean("utilization_gpu_mean") AS "v0" FROM "gp\\"db"."rp_1m"."nvidia_smi_1m" WHERE "host" = 'a\\'b"c\\\\d?e' ` +
        `AND time >= '1970-01-01T00:00:00.000Z' AND time < '1970-01-02T00:00:00.000Z' GROUP BY time(86400000ms, 54000000ms), "uuid" fill(null)`,
    );
  });
  it('periods start at local midnight, Monday, the 1st', () => {
    const t = new Date(2026, 4, 14, 15, 30).getTime(); // Thursday
    expect(periodStart(t, 'day')).toBe(new Date(2026, 4, 14).getTime());
    expect(periodStart(t, 'week')).toBe(new Date(2026, 4, 11).getTime());
    expect(periodStart(t, 'month')).toBe(new Date(2026, 4, 1).getTime());
  });
});

describe('the tier follows the data that exists', () => {
  /** A store whose history began at `since`: each tier answers with a value in every bucket from then. */
  function historySince(since: number) {
    const asked: string[] = [];
    const backend = {
      async aggregate(q: AggQuery) {
        asked.push(q.rp ?? 'none');
        const rows: Array<[number, ...(number | null)[]]> = [];
        for (let t = q.from; t < q.to; t += q.stepMs) rows.push([t, t + q.stepMs > since ? 50 : null]);
        return [{ tags: {}, rows }];
      },
    };
    return { backend, asked };
  }
  const NOW = Date.UTC(2026, 4, 14, 12);
  const policies = { raw: 'raw', '1m': 'm1', '1h': 'h1' };
  const ask = (since: number, span: number) => {
    const h = historySince(since);
    const params = new URLSearchParams({ scope: 'cluster', from: String(NOW - span), to: String(NOW) });
    return queryHistory({ backend: h.backend, policies, now: () => NOW }, params).then((r) => ({
      r,
      asked: h.asked,
    }));
  };

  it('30 days asked, 20 days of history: the hourly tier, one query', async () => {
    const { r, asked } = await ask(NOW - 20 * DAY, 30 * DAY);
    expect(r.tier).toBe('1h');
    expect(asked).toEqual(['h1']);
  });

  it('30 days asked, 3 days of history: the minute tier over those days', async () => {
    const { r } = await ask(NOW - 3 * DAY, 30 * DAY);
    expect(r.tier).toBe('1m');
    const pts = r.series[0]!.points;
    expect(pts[0]![0]).toBeGreaterThanOrEqual(NOW - 3 * DAY - r.stepMs);
    expect(r.from).toBeLessThanOrEqual(NOW - 30 * DAY);
  });

  it('30 days asked, 40 minutes of history: raw points (many, not one hourly mean)', async () => {
    const { r } = await ask(NOW - 40 * MIN, 30 * DAY);
    expect(r.tier).toBe('raw');
    expect(r.series[0]!.points.filter(([, v]) => v !== null).length).toBeGreaterThan(100);
  });
});

describe('history and usage on the in-memory store', () => {
  it('serves recent history (raw and rollup tiers) and usage; validates parameters', async () => {
    const T0 = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    const clock = new ManualClock(T0);
    const store = new MemoryStore({ now: () => clock.now(), maxAgeMs: 3 * HOUR });
    const server = await startServerWithAccess('display', {
      store,
      clock,
      config: { rollupGraceMs: 0, idleWindowMs: 30_000 },
    });
    const agent = await connectAgent(server, { node: 'n1' });
    const batch = [];
    for (let i = 0; i < 120; i++) {
      batch.push(
        sample(i, T0 + i * 1000, {
          gpus: [gpu(0, { utilizationGpuPercent: i < 60 ? 10 : 30 }), gpu(1, { utilizationGpuPercent: 1 })],
          processes: [{ gpuUuid: gpu(1).uuid, pid: 3, usedMemoryMiB: 5, name: 'x', user: 'u1' }],
        }),
      );
    }
    clock.set(T0 + 2 * MIN);
    expect((await agent.emitWithAck('samples:report', { samples: batch })).ok).toBe(true);
    clock.set(T0 + HOUR + 1);
    server.rollups.flush();
    await waitFor(
      () => store.points().some((p) => p.measurement === 'nvidia_smi_1h'),
      3000,
      'rollups stored',
    );

    const get = async (path: string) => {
      // Usage by user needs the viewer role (the default anonymous role is display).
      const res = await fetch(server.url + path, { headers: bearer('viewer') });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const raw = await get(
      `/api/v1/history?scope=node&id=n1&metrics=utilization&from=${T0}&to=${T0 + 2 * MIN}&step=1m`,
    );
    expect(raw.status).toBe(200);
    const h = HistoryResponseSchema.parse(raw.body);
    expect(h).toMatchObject({ tier: 'raw', stepMs: MIN });
    expect(h.series.map((s) => [s.key, s.points])).toEqual([
      [
        gpu(0).uuid,
        [
          [T0, 10],
          [T0 + MIN, 30],
        ],
      ],
      [
        gpu(1).uuid,
        [
          [T0, 1],
          [T0 + MIN, 1],
        ],
      ],
    ]);
    const m = HistoryResponseSchema.parse(
      (await get(`/api/v1/history?scope=gpu&id=${gpu(0).uuid}&from=${T0 - 7 * HOUR}&to=${T0 + HOUR}`)).body,
    );
    // The tier follows the data that exists: 8 h asked, 2 minutes of history → raw 5-s points over
    // those 2 minutes (not two 1-minute means); `from` is still the asked start.
    expect(m.tier).toBe('raw');
    expect(m.from).toBe(Math.floor((T0 - 7 * HOUR) / m.stepMs) * m.stepMs);
    const got = m.series[0]!.points.filter((p) => p[1] !== null);
    expect(got).toHaveLength(24);
    expect(got[0]).toEqual([T0, 10]);
    expect(got.at(-1)).toEqual([T0 + 115_000, 30]);

    const usage = UsageResponseSchema.parse(
      (await get(`/api/v1/usage?from=${T0}&to=${T0 + HOUR}&groupBy=user`)).body,
    );
    expect(usage.rows.map((r) => r.key)).toEqual(['u1']);
    expect(usage.rows[0]!.gpuHours).toBeCloseTo(120 / 3600, 5);
    expect(usage.rows[0]!.idleHeldGpuHours).toBeCloseTo(90 / 3600, 5);
    expect(usage.rows[0]!.busyGpuHours).toBeCloseTo(30 / 3600, 5);

    for (const [q, msg] of [
      ['scope=rack&id=x', 'scope'],
      ['scope=gpu', 'scope gpu needs an id'],
      ['scope=gpu&id=x&metrics=utilization,bogus', 'unknown metric "bogus"'],
      ['scope=project&id=x&metrics=temperature', 'metric temperature is not available for scope project'],
      ['scope=cluster&from=yesterday', 'from must be ms since the epoch'],
      ['scope=cluster&from=now-1h&to=now-2h', 'from must be before to'],
      ['scope=cluster&step=0', 'step must be a positive duration'],
      ['scope=cluster&extra=1', 'extra'],
      // Hostile values: 400 naming the parameter, never 500/503.
      ['scope=cluster&from=now-999999999d&to=now-999999998d', 'from must lie between 1970 and 2286'],
      ['scope=cluster&to=99999999999999', 'to must lie between 1970 and 2286'],
      ['scope=cluster&from=now-2000d', 'from: the range from … to is longer than 5 years'],
      ['scope=gpu&id=a%00b', 'id: must not contain control characters'],
      ['scope=node&id=a%0Ab', 'id: must not contain control characters'],
      ['scope=cluster&step=99999999999999w', 'step must be at most 366d'],
      ['scope=cluster&step=9999999999999999999999999', 'step must be at most 366d'],
      ['scope=cluster&metrics=utilization,nope', 'metrics: unknown metric "nope"'],
    ]) {
      const r = await get(`/api/v1/history?${q}`);
      expect(r.status, q).toBe(400);
      expect((r.body.error as { code: string; message: string }).message, q).toContain(msg);
    }
    expect((await get('/api/v1/usage?groupBy=team')).status).toBe(400);
    for (const [q, msg] of [
      ['from=now-999999999d&to=now-999999998d', 'from must lie between 1970 and 2286'],
      ['from=now-1d&to=now-2d', 'from must be before to'],
      ['from=now-3000d', 'longer than 5 years'],
    ]) {
      const r = await get(`/api/v1/usage?${q}`);
      expect(r.status, q).toBe(400);
      expect((r.body.error as { code: string; message: string }).message, q).toContain(msg);
    }
    expect((await get('/api/v1/usage?period=year')).status).toBe(400);
  });
});
