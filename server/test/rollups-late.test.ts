/**
 * Late samples and restarts against a real influxd: per-project GPU-hours in the 1m and 1h tiers
 * equal the sum over the raw points (to 0.1 %) after a replay that arrives 5 minutes late and
 * straddles an hour boundary, and after a server restart in the middle of an hour.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GpuProcess, Sample } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import type { GpupulseServer } from '../src/app.ts';
import { ManualClock } from '../src/clock.ts';
import { attributionFromFn } from '../src/fleet/attribution.ts';
import { RollupAggregator } from '../src/rollups/rollup-aggregator.ts';
import { InfluxStore } from '../src/storage/influx-store.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import { MemoryStore } from '../src/storage/memory-store.ts';
import {
  type AgentClient,
  connectAgent,
  gpu,
  onCleanup,
  sample,
  startServer,
  tempDir,
  waitFor,
} from './helpers.ts';

const MIN = 60_000;
const HOUR = 3_600_000;
const DB = 'gp_late';

const procs = (uuid0: string, uuid1: string | null): GpuProcess[] => [
  { gpuUuid: uuid0, pid: 10, usedMemoryMiB: 4000, name: 'train', user: 'alice' },
  ...(uuid1 ? [{ gpuUuid: uuid1, pid: 11, usedMemoryMiB: 2000, name: 'eval', user: 'bob' }] : []),
];

/** One node's samples at 1 Hz for minutes [from, to) after t0. */
function minutes(t0: number, from: number, to: number, twoGpus: boolean, seq0: number): Sample[] {
  const out: Sample[] = [];
  for (let i = from * 60; i < to * 60; i++) {
    out.push(
      sample(seq0 + i, t0 + i * 1000, {
        gpus: twoGpus
          ? [gpu(0, { utilizationGpuPercent: 50 + (i % 40) }), gpu(1, { utilizationGpuPercent: 90 })]
          : [gpu(0, { utilizationGpuPercent: 30 + (i % 20) })],
        processes: procs(gpu(0).uuid, twoGpus ? gpu(1).uuid : null),
      }),
    );
  }
  return out;
}

async function report(agent: AgentClient, samples: Sample[]): Promise<void> {
  for (let i = 0; i < samples.length; i += 600) {
    const ack = await agent.emitWithAck('samples:report', { samples: samples.slice(i, i + 600) });
    expect(ack.ok, JSON.stringify(ack).slice(0, 300)).toBe(true);
  }
}

describe('rollups agree with raw data after late samples and a restart', () => {
  it('a replay 5 minutes late and a restart mid-hour: per-project GPU-hours of 1m and 1h tiers = raw', async () => {
    const dir = await tempDir('gpupulse-influxd-');
    const managed = await startManagedInfluxd({ dataDir: dir });
    onCleanup(() => managed.stop());
    const store = new InfluxStore({ url: managed.url, database: DB, timeoutMs: 5000 });
    await store.init();
    const projectsFile = join(dir, 'projects.yaml');
    await writeFile(
      projectsFile,
      'projects:\n  - id: alpha\n    match: { users: [alice] }\n  - id: beta\n    match: { users: [bob] }\n',
    );
    // The replayed minutes straddle the hour boundary H: hour H-1 is written before they arrive.
    const H = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const T0 = H - 5 * MIN;
    const clock = new ManualClock(T0);
    const config = {
      projectsFile,
      rollupGraceMs: 1000,
      writeBuffer: { batchSize: 5000, flushIntervalMs: 50, maxPoints: 500_000 },
    };
    const start = async () => {
      const server = await startServer({ store, clock, config });
      // The start-up rebuild is done before the first sample.
      await waitFor(() => server.rollups.stats.rebuilds === 1, 5000, 'rollups rebuilt at start');
      return server;
    };
    const flushAll = async (server: GpupulseServer) => {
      // The periodic flush, until every late sample is merged and everything is stored.
      await waitFor(
        async () => {
          server.rollups.flush();
          await server.rollups.settle();
          return server.buffer.buffered === 0 && server.buffer.spooled === 0;
        },
        10_000,
        'rollups flushed and stored',
      );
    };

    let server = await start();
    const a = await connectAgent(server, { node: 'node-a' });
    const b = await connectAgent(server, { node: 'node-b' });
    // node-a reports live, minute by minute, for 15 minutes; node-b is cut off.
    for (let m = 0; m < 15; m++) {
      clock.set(T0 + (m + 1) * MIN + 2000);
      await report(a, minutes(T0, m, m + 1, true, 0));
      server.rollups.flush();
    }
    expect(server.rollups.stats.hoursWritten).toBe(1); // hour H-1 is written
    // node-b's 10 minutes (H-5 … H+5) arrive 5 minutes after the last of them ended.
    expect(clock.now() - (T0 + 10 * MIN)).toBeGreaterThanOrEqual(5 * MIN);
    await report(b, minutes(T0, 0, 10, false, 0));
    await flushAll(server);
    expect(server.rollups.stats).toMatchObject({ late: 600, lateMerged: 600, lateDropped: 0 });
    expect(server.rollups.stats.hoursRewritten).toBeGreaterThanOrEqual(1);
    // A resent report (ack lost) counts once.
    await report(b, minutes(T0, 9, 10, false, 0));
    await flushAll(server);
    expect(server.rollups.stats.lateMerged).toBe(600);
    expect(server.rollups.stats.duplicate).toBe(60);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('gpupulse_rollup_late_samples_total{result="merged"} 600');
    expect(metrics).toContain('gpupulse_rollup_late_samples_total{result="dropped"} 0');

    // Restart in the middle of hour H: the new server starts the hour from the stored minutes.
    a.close();
    b.close();
    await server.close();
    server = await start();
    await waitFor(() => server.rollups.stats.hoursRewritten >= 1, 5000, 'hour tier rebuilt');
    const a2 = await connectAgent(server, { node: 'node-a' });
    for (let m = 15; m < 20; m++) {
      clock.set(T0 + (m + 1) * MIN + 2000);
      await report(a2, minutes(T0, m, m + 1, true, 0));
      server.rollups.flush();
    }
    clock.set(H + HOUR + 2000);
    await flushAll(server);
    expect(server.rollups.stats.hoursWritten).toBe(1); // hour H, with the minutes from before the restart

    const where = `time >= ${T0}ms AND time < ${T0 + 20 * MIN}ms`;
    const byProject = async (q: string) => {
      const res = await store.query(q);
      return Object.fromEntries(res.series.map((s) => [s.tags?.project ?? '', s.values[0]![1] as number]));
    };
    // Raw: one point per GPU and second, tagged with its project.
    const raw = await byProject(
      `SELECT count(utilization_gpu) FROM nvidia_smi WHERE ${where} GROUP BY "project"`,
    );
    expect(raw).toEqual({ alpha: 20 * 60 + 10 * 60, beta: 20 * 60 });
    const m1 = await byProject(
      `SELECT sum(gpu_seconds_in_use) FROM "${DB}"."rp_1m"."project_usage_1m" WHERE ${where} GROUP BY "project"`,
    );
    const h1 = await byProject(
      `SELECT sum(gpu_seconds_in_use) FROM "${DB}"."rp_1h"."project_usage_1h" WHERE time >= ${H - HOUR}ms AND time <= ${H}ms GROUP BY "project"`,
    );
    for (const p of ['alpha', 'beta']) {
      expect(Math.abs(m1[p]! - raw[p]!) / raw[p]!, `${p} 1m: ${m1[p]} vs raw ${raw[p]}`).toBeLessThan(0.001);
      expect(Math.abs(h1[p]! - raw[p]!) / raw[p]!, `${p} 1h: ${h1[p]} vs raw ${raw[p]}`).toBeLessThan(0.001);
    }
    // One point per series and window: the rewritten GPU rollups replaced the old ones.
    const gpuMinutes = await store.query(
      `SELECT count(samples), sum(samples) FROM "${DB}"."rp_1m"."nvidia_smi_1m" WHERE ${where} GROUP BY "host", "uuid"`,
    );
    const perGpu = gpuMinutes.series.map((s) => [s.tags?.host, s.values[0]![1], s.values[0]![2]]);
    expect(perGpu).toEqual(
      expect.arrayContaining([
        ['node-a', 20, 1200],
        ['node-b', 10, 600],
      ]),
    );
    const gpuHours = await store.query(
      `SELECT sum(samples), sum(gpu_seconds_in_use) FROM "${DB}"."rp_1h"."nvidia_smi_1h" WHERE time >= ${H - HOUR}ms AND time <= ${H}ms GROUP BY "host"`,
    );
    expect(gpuHours.series.map((s) => [s.tags?.host, s.values[0]![1], s.values[0]![2]])).toEqual([
      ['node-a', 2400, 2400],
      ['node-b', 600, 600],
    ]);
  });
});

describe('late merges on the in-memory store (same InfluxQL subset)', () => {
  it('late samples, a duplicate, a restart: minute and hour sums equal the samples', async () => {
    const T0 = 10 * HOUR - 2 * MIN;
    let now = T0;
    const store = new MemoryStore({ now: () => now, maxAgeMs: 100 * HOUR });
    let written = 0;
    const make = () =>
      new RollupAggregator({
        attribution: attributionFromFn((_n, _g, p) => (p[0]?.user === 'bob' ? 'beta' : 'alpha')),
        institutionOf: () => null,
        graceMs: 0,
        now: () => now,
        emit: (points) => {
          written += points.length;
          void store.write(points);
        },
        reader: store,
      });
    const feed = (agg: RollupAggregator, node: string, from: number, to: number) =>
      agg.ingest(
        node,
        minutes(T0, from, to, true, 0).map((s) => ({ sample: s, processes: s.processes! })),
        1000,
      );
    const sum = (measurement: string, project: string) =>
      store
        .readSeries({ measurement, field: 'gpu_seconds_in_use', tags: { project } })
        .reduce((a, v) => a + (v.value as number), 0);

    let agg = make();
    await agg.rebuild();
    now = T0 + 4 * MIN;
    feed(agg, 'a', 0, 4); // minutes 0–3 on time (2 before the hour, 2 after)
    agg.flush();
    expect(agg.stats.hoursWritten).toBe(1);
    feed(agg, 'b', 0, 4); // node b: all four minutes late
    feed(agg, 'b', 3, 4); // and its last minute twice
    agg.flush();
    await agg.settle();
    expect(agg.stats).toMatchObject({ late: 240, lateMerged: 240, lateDropped: 0, duplicate: 60 });
    // 1m tier: a and b, one GPU of each in alpha and one in beta, 240 s each.
    expect(sum('project_usage_1m', 'alpha')).toBe(480);
    expect(sum('project_usage_1m', 'beta')).toBe(480);
    // Restart: the open hour starts from the stored minutes; the closed hour is written again.
    agg = make();
    expect(await agg.rebuild()).toEqual({ hours: 2, minutes: 4 });
    now = T0 + HOUR;
    agg.flush(now, true);
    expect(sum('project_usage_1h', 'alpha')).toBe(480);
    expect(sum('project_usage_1h', 'beta')).toBe(480);
    expect(written).toBeGreaterThan(0);
  });

  it('a rebuild that fails at start (storage not up yet) is tried again and does not count twice', async () => {
    const T0 = 20 * HOUR;
    let now = T0 + 10 * MIN;
    const store = new MemoryStore({ now: () => now, maxAgeMs: 100 * HOUR });
    // Before the restart: 5 minutes of hour T0 stored.
    const before = new RollupAggregator({
      attribution: attributionFromFn(() => 'alpha'),
      institutionOf: () => null,
      graceMs: 0,
      now: () => now,
      emit: (points) => void store.write(points),
    });
    before.ingest(
      'a',
      minutes(T0, 0, 5, false, 0).map((s) => ({ sample: s, processes: s.processes! })),
      1000,
    );
    before.flush();
    let down = true;
    const errors: string[] = [];
    const after = new RollupAggregator({
      attribution: attributionFromFn(() => 'alpha'),
      institutionOf: () => null,
      graceMs: 0,
      now: () => now,
      emit: (points) => void store.write(points),
      reader: {
        query: (q) => (down ? Promise.reject(new Error('connection refused')) : store.query(q)),
      },
      onError: (_err, what) => errors.push(what),
    });
    await expect(after.rebuild()).rejects.toThrow('connection refused');
    // Minutes 10–11 arrive and are written while the storage is still down.
    after.ingest(
      'a',
      minutes(T0, 10, 12, false, 0).map((s) => ({ sample: s, processes: s.processes! })),
      1000,
    );
    const tick = () => new Promise((r) => setImmediate(r));
    now = T0 + 12 * MIN;
    after.flush(); // tries the rebuild again: still down
    await tick();
    expect(errors).toEqual(['rebuilding the hour tier']);
    after.flush(); // writes minutes 10–11 (the next try is 30 s later)
    expect(after.stats.minutesWritten).toBe(2);
    down = false;
    now += 30_000;
    after.flush(); // tries again: up
    await waitFor(() => after.stats.rebuilds === 1, 1000, 'rebuilt');
    now = T0 + HOUR;
    after.flush(now, true);
    const hour = store.readSeries({
      measurement: 'project_usage_1h',
      field: 'gpu_seconds_in_use',
      tags: { project: 'alpha' },
    });
    expect(hour.map((v) => v.value)).toEqual([(5 + 2) * 60]);
  });
});
