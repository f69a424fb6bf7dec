/**
 * Against a real influxd (started in a temp dir; a missing influxd fails loudly): retention
 * policies, rollups checked against InfluxQL over the raw points, history tiers, usage split and
 * CSV, and hostile names that must not break out of the InfluxQL.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type GpuProcess, HistoryResponseSchema, UsageResponseSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { InfluxStore, quoteIdent, quoteString } from '../src/storage/influx-store.ts';
import { storedName } from '../src/storage/line-protocol.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import { gpuRollupPoint, usageRollupPoint } from '../src/storage/schema.ts';
import { accessYaml, writeAccessFile } from './access-helpers.ts';
import { connectAgent, gpu, onCleanup, sample, startServer, tempDir, waitFor } from './helpers.ts';

const HOUR = 3_600_000;
const MIN = 60_000;
const DB = 'gp_rollups';
const EVIL_USER = `o'brien "x" \\ '; DROP MEASUREMENT nvidia_smi; --\nnext`;
/** As line protocol stores it: the newline becomes `?`, the backslash before a space `⧵` (line-protocol.ts). */
const EVIL_USER_STORED = storedName(EVIL_USER);
const EVIL_NODE = `node "q" 'x' \\ y; DROP DATABASE ${DB}`;
const EVIL_UUID = `GPU-'"\\ x' OR '1'='1`;

describe('rollups, history and usage against a real influxd', () => {
  it('rollups equal InfluxQL over raw; tiers; usage busy/idle + CSV; hostile names stay data', async () => {
    const dir = await tempDir('gpupulse-influxd-');
    const managed = await startManagedInfluxd({ dataDir: dir });
    onCleanup(() => managed.stop());
    const store = new InfluxStore({
      url: managed.url,
      database: DB,
      kind: 'managed-influxdb',
      timeoutMs: 5000,
    });
    await store.init();
    const projectsFile = join(dir, 'projects.yaml');
    await writeFile(
      projectsFile,
      'institutions: [{ id: univ }]\nprojects:\n  - id: alpha\n    institution: univ\n    match: { users: [alice] }\n  - id: beta\n    match: { slurmAccounts: [b] }\n',
    );
    const T0 = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const clock = new ManualClock(T0);
    const server = await startServer({
      store,
      clock,
      config: {
        projectsFile,
        // Usage by user needs the viewer role: anonymous requests get it here.
        accessFile: await writeAccessFile(accessYaml('viewer')),
        rollupGraceMs: 1000,
        idleWindowMs: MIN,
        writeBuffer: { batchSize: 5000, flushIntervalMs: 50, maxPoints: 500_000 },
      },
    });
    expect(server.retentionPolicies).toEqual({ raw: 'rp_raw', '1m': 'rp_1m', '1h': 'rp_1h' });
    const rps = await store.query(`SHOW RETENTION POLICIES ON ${quoteIdent(DB)}`);
    const rpRows = rps.series[0]!.values.map((r) => [r[0], r[1], r[4]]);
    expect(rpRows).toEqual(
      expect.arrayContaining([
        ['rp_raw', '336h0m0s', true],
        ['rp_1m', '4320h0m0s', false],
        ['rp_1h', '0s', false],
      ]),
    );

    const agent = await connectAgent(server, { node: 'gpu-01' });
    const evil = await connectAgent(server, { node: EVIL_NODE });
    const procs: GpuProcess[] = [
      { gpuUuid: gpu(0).uuid, pid: 1, usedMemoryMiB: 3000, name: 'train', user: 'alice' },
      {
        gpuUuid: gpu(0).uuid,
        pid: 2,
        usedMemoryMiB: 1000,
        name: 'eval',
        slurmAccount: 'b',
        slurmJobId: '9',
        user: EVIL_USER,
      },
      { gpuUuid: gpu(1).uuid, pid: 3, usedMemoryMiB: 500, name: 'notebook', user: 'carol' },
    ];
    // 3 minutes at 1 Hz: GPU 0 busy with varying figures, GPU 1 held at 0 % (idle-held after 1 min).
    for (let m = 0; m < 3; m++) {
      const batch = [];
      const evilBatch = [];
      for (let s = 0; s < 60; s++) {
        const i = m * 60 + s;
        const ts = T0 + i * 1000;
        batch.push(
          sample(i, ts, {
            gpus: [
              gpu(0, {
                utilizationGpuPercent: 50 + (i % 40),
                powerDrawWatts: 300 + (i % 7) * 10.5,
                temperatureCelsius: 60 + (i % 5),
              }),
              gpu(1, { utilizationGpuPercent: 0, powerDrawWatts: 80 }),
            ],
            processes: procs,
          }),
        );
        evilBatch.push(
          sample(i, ts, {
            gpus: [gpu(0, { uuid: EVIL_UUID, utilizationGpuPercent: 7 })],
            processes: [{ gpuUuid: EVIL_UUID, pid: 5, usedMemoryMiB: 1, name: 'x', user: EVIL_USER }],
          }),
        );
      }
      clock.set(T0 + (m + 1) * MIN);
      expect((await agent.emitWithAck('samples:report', { samples: batch })).ok).toBe(true);
      expect((await evil.emitWithAck('samples:report', { samples: evilBatch })).ok).toBe(true);
    }
    clock.set(T0 + HOUR + 2000);
    server.rollups.flush();
    expect(server.rollups.stats).toMatchObject({ samples: 360, late: 0, duplicate: 0 });
    const uuid0 = gpu(0).uuid;
    await waitFor(
      async () =>
        (await store.query(`SELECT count(samples) FROM "${DB}"."rp_1h"."nvidia_smi_1h"`)).series.length > 0,
      5000,
      'hour rollups written',
    );
    await waitFor(async () => server.buffer.buffered === 0, 5000, 'buffer drained');

    // Minute rollup of GPU 0, minute 2, against InfluxQL over the raw points.
    const w = `"uuid" = ${quoteString(uuid0)} AND time >= ${(T0 + MIN) * 1e6} AND time < ${(T0 + 2 * MIN) * 1e6}`;
    const raw = (
      await store.query(
        `SELECT mean(utilization_gpu), max(power_draw), sum(power_draw), mean(temperature_gpu), count(utilization_gpu) FROM nvidia_smi WHERE ${w}`,
      )
    ).series[0]!.values[0]!;
    const roll = (
      await store.query(
        `SELECT utilization_gpu_mean, power_draw_max, energy_wh, temperature_gpu_mean, samples, gpu_seconds_in_use, "project" FROM "${DB}"."rp_1m"."nvidia_smi_1m" WHERE "uuid" = ${quoteString(uuid0)} AND time = ${(T0 + MIN) * 1e6}`,
      )
    ).series[0]!.values[0]!;
    expect(roll[1]).toBeCloseTo(raw[1] as number, 9);
    expect(roll[2]).toBeCloseTo(raw[2] as number, 9);
    expect(roll[3]).toBeCloseTo((raw[3] as number) / 3600, 9);
    expect(roll[4]).toBeCloseTo(raw[4] as number, 9);
    expect(roll.slice(5)).toEqual([raw[5], 60, 'alpha']);
    // Hour rollup = InfluxQL over the whole hour of raw points.
    const rawHour = (
      await store.query(
        `SELECT mean(utilization_gpu), max(power_draw) FROM nvidia_smi WHERE "uuid" = ${quoteString(uuid0)}`,
      )
    ).series[0]!.values[0]!;
    const rollHour = (
      await store.query(
        `SELECT utilization_gpu_mean, power_draw_max, gpu_seconds_in_use FROM "${DB}"."rp_1h"."nvidia_smi_1h" WHERE "uuid" = ${quoteString(uuid0)}`,
      )
    ).series[0]!.values[0]!;
    expect(rollHour[0]).toBe(T0);
    expect(rollHour[1]).toBeCloseTo(rawHour[1] as number, 9);
    expect(rollHour[2]).toBe(rawHour[2]);
    expect(rollHour[3]).toBe(180);
    // Project rollup: alpha holds 3/4 of GPU 0 (memory share).
    const alpha = (
      await store.query(
        `SELECT gpu_seconds_in_use, energy_wh, "institution" FROM "${DB}"."rp_1h"."project_usage_1h" WHERE "project" = 'alpha'`,
      )
    ).series[0]!.values[0]!;
    const rawEnergy0 = (
      await store.query(`SELECT sum(power_draw) FROM nvidia_smi WHERE "uuid" = ${quoteString(uuid0)}`)
    ).series[0]!.values[0]![1] as number;
    expect(alpha[1]).toBeCloseTo(135, 9);
    expect(alpha[2]).toBeCloseTo((0.75 * rawEnergy0) / 3600, 9);
    expect(alpha[3]).toBe('univ');
    // Raw points carry the attributed project; processes carry user and project.
    const tagged = await store.query(
      `SELECT count(utilization_gpu) FROM nvidia_smi WHERE "project" = 'alpha'`,
    );
    expect(tagged.series[0]!.values[0]![1]).toBe(180);
    const evilProc = await store.query(
      `SELECT count(pid) FROM gpupulse_process WHERE "user" = ${quoteString(EVIL_USER_STORED)} AND "project" = 'beta'`,
    );
    expect(evilProc.series[0]!.values[0]![1]).toBe(180);

    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}${path}`, { headers });
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    };
    const history = async (q: Record<string, string>) => {
      const r = await get(`/api/v1/history?${new URLSearchParams(q)}`);
      expect(r.status, r.text).toBe(200);
      return HistoryResponseSchema.parse(JSON.parse(r.text));
    };
    // Raw tier (3 minutes); a range longer than the history is answered from the finest tier
    // holding all of it (history-api.ts): 3 minutes of history → raw even for 8 h asked. The 1m and
    // 1h tiers answer once the history is long enough (seeded below: 7 h of 1m, 20 days of 1h).
    const h1 = await history({
      scope: 'gpu',
      id: uuid0,
      metrics: 'utilization,power',
      from: String(T0),
      to: String(T0 + 3 * MIN),
      step: '1m',
    });
    expect(h1).toMatchObject({ tier: 'raw', stepMs: MIN });
    expect(h1.series.map((s) => s.metric)).toEqual(['utilization', 'power']);
    expect(h1.series[0]!.points[1]![1]).toBeCloseTo(raw[1] as number, 3);
    const h2 = await history({
      scope: 'gpu',
      id: uuid0,
      metrics: 'utilization',
      from: String(T0 - 7 * HOUR),
      to: String(T0 + HOUR),
    });
    expect(h2.tier).toBe('raw');
    expect(h2.from).toBe(Math.floor((T0 - 7 * HOUR) / h2.stepMs) * h2.stepMs);
    expect(h2.stepMs).toBeLessThan(MIN);
    const h2pts = h2.series[0]!.points.filter((p) => p[1] !== null);
    expect(h2pts[0]![0]).toBe(T0);
    expect(h2pts.at(-1)![0]).toBeLessThan(T0 + 3 * MIN);
    expect(h2pts.length).toBeGreaterThan(3);
    // An older history: GPU 0's minute rollups reach back 7 h, alpha's hour rollups 20 days.
    await store.write([
      {
        ...gpuRollupPoint('1m', T0 - 7 * HOUR, {
          host: 'gpu-01',
          uuid: uuid0,
          index: 0,
          name: gpu(0).name,
          project: 'alpha',
          samples: 60,
          metrics: { utilizationGpuPercent: { mean: 42, max: 60 } },
          gpuSecondsInUse: 60,
          gpuSecondsIdleHeld: 0,
          energyWh: 5,
        }),
        rp: 'rp_1m',
      },
      {
        ...usageRollupPoint('1h', T0 - 20 * 24 * HOUR, {
          kind: 'project',
          project: 'alpha',
          institution: 'univ',
          gpuSecondsInUse: 7200,
          gpuSecondsIdleHeld: 0,
          energyWh: 600,
          utilizationMean: 50,
          gpusInUseMean: 2,
          gpusIdleHeldMean: 0,
          memoryUsedMean: 4000,
          powerDrawMean: 300,
        }),
        rp: 'rp_1h',
      },
    ]);
    const h2m = await history({
      scope: 'gpu',
      id: uuid0,
      metrics: 'utilization',
      from: String(T0 - 7 * HOUR),
      to: String(T0 + HOUR),
    });
    expect(h2m).toMatchObject({ tier: '1m', stepMs: MIN });
    expect(h2m.series[0]!.points.find((p) => p[0] === T0 - 7 * HOUR)![1]).toBe(42);
    expect(h2m.series[0]!.points.find((p) => p[0] === T0 + MIN)![1]).toBeCloseTo(raw[1] as number, 3);
    const h3 = await history({
      scope: 'project',
      id: 'alpha',
      metrics: 'gpus_in_use,power',
      from: String(T0 - 30 * 24 * HOUR),
      to: String(T0 + HOUR),
    });
    expect(h3).toMatchObject({ tier: '1h', stepMs: HOUR });
    expect(h3.series[0]!.points.filter((p) => p[1] !== null)).toEqual([
      [T0 - 20 * 24 * HOUR, 2],
      [T0, 0.0375],
    ]);
    const h4 = await history({
      scope: 'cluster',
      metrics: 'utilization,temperature',
      from: String(T0 - 7 * HOUR),
      to: String(T0 + HOUR),
    });
    expect(h4.series).toHaveLength(2);
    expect(h4.series[0]!.points.some((p) => p[1] !== null)).toBe(true);

    // Hostile names as ids: found as data, never breaking out.
    const hn = await history({
      scope: 'node',
      id: EVIL_NODE,
      metrics: 'utilization',
      from: String(T0),
      to: String(T0 + 3 * MIN),
    });
    expect(hn.series.map((s) => s.key)).toEqual([storedName(EVIL_UUID)]);
    expect(hn.series[0]!.points.filter((p) => p[1] !== null).every((p) => p[1] === 7)).toBe(true);
    const hg = await history({
      scope: 'gpu',
      id: EVIL_UUID,
      metrics: 'utilization',
      from: String(T0),
      to: String(T0 + 3 * MIN),
      step: '3m',
    });
    expect(hg.series[0]!.points[0]![1]).toBe(7);
    const hp = await history({
      scope: 'project',
      id: `alpha' OR '1'='1`,
      metrics: 'gpus_in_use',
      from: String(T0 - 7 * HOUR),
      to: String(T0 + HOUR),
    });
    expect(hp.series[0]!.points.every((p) => p[1] === null)).toBe(true);
    expect((await store.query('SHOW DATABASES')).series[0]!.values.flat()).toContain(DB);
    expect(
      (await store.query('SELECT count(utilization_gpu) FROM nvidia_smi')).series[0]!.values[0]![1],
    ).toBe(540);

    // Usage: busy vs idle-held, per project / user / institution, JSON and CSV.
    const usage = async (q: string, headers: Record<string, string> = {}) => {
      const r = await get(`/api/v1/usage?from=${T0}&to=${T0 + HOUR}&${q}`, headers);
      expect(r.status, r.text).toBe(200);
      return r;
    };
    const byProject = UsageResponseSchema.parse(JSON.parse((await usage('groupBy=project&period=day')).text));
    const row = (k: string) => byProject.rows.find((r) => r.key === k)!;
    expect(row('alpha')).toMatchObject({ gpuHours: 135 / 3600, idleHeldGpuHours: 0 });
    // GPU 1 (carol, unassigned) is idle-held from its 61st second; the evil node's GPU (7 %) is busy.
    expect(row('unassigned').idleHeldGpuHours).toBeCloseTo(120 / 3600, 6);
    expect(row('unassigned').busyGpuHours).toBeCloseTo((60 + 180) / 3600, 6);
    expect(row('beta').gpuHours).toBeCloseTo(45 / 3600, 6);
    const sum = byProject.rows.reduce((a, r) => a + r.gpuHours, 0);
    expect(sum).toBeCloseTo(540 / 3600, 6);
    const byUser = UsageResponseSchema.parse(JSON.parse((await usage('groupBy=user&period=week')).text));
    expect(byUser.rows.map((r) => r.key).sort()).toEqual(['alice', 'carol', EVIL_USER_STORED].sort());
    const byInst = UsageResponseSchema.parse(
      JSON.parse((await usage('groupBy=institution&period=month')).text),
    );
    expect(byInst.rows.map((r) => r.key).sort()).toEqual(['unassigned', 'univ']);
    const csv = await usage('groupBy=user', { accept: 'text/csv' });
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'period_start,user,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh,idle_held_energy_kwh,co2e_kg,agreed_gpu_hours,share_used_percent,over_share',
    );
    expect(csv.text).toContain(`,"o'brien ""x"" ⧵ '; DROP MEASUREMENT nvidia_smi; --?next",`);
    expect((await usage('format=csv')).text.split('\r\n')[0]).toBe(
      'period_start,project,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh,idle_held_energy_kwh,co2e_kg,agreed_gpu_hours,share_used_percent,over_share',
    );
  });
});
