/**
 * Late samples and rollups: the two ways issue 9 names, measured side by side on a private influxd.
 * Run: pnpm --filter @gpupulse/server exec tsx bench/rollup-late.ts
 *
 * Setup (BENCH_NODES nodes × 8 GPUs, default 50 = 400 GPUs, 1 Hz, BENCH_MINUTES = 10 minutes): every
 * node's raw points are in InfluxDB; the minute rollups were written from the first half of the
 * nodes; the other half's samples then arrive late (an agent replay). Each approach brings the 1m
 * rollups of the touched minutes up to date:
 *
 *   A. re-aggregate from raw with InfluxQL: per touched minute one GROUP BY host, uuid, project
 *      query over `nvidia_smi`, rollup points built from its rows and written. GPU-level only: the
 *      memory-share split between projects and the idle-held window cannot be recomputed from raw
 *      points (process lists are stored on change only), so its project figures use each raw
 *      point's single `project` tag.
 *   B. incremental merge (what the server does, src/rollups/rollup-aggregator.ts): the late
 *      samples are aggregated in memory into per-minute deltas; per touched minute the stored 1m
 *      points are read back (one SELECT per rollup measurement), the deltas added, the points
 *      written again.
 *
 * Prints wall time, the server process's CPU time, influxd's CPU time (from /proc), InfluxDB
 * queries and points written, and whether the per-project GPU-seconds agree with the raw points.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GpuMetrics, GpuProcess, Sample } from '@gpupulse/protocol';
import { attributionFromFn } from '../src/fleet/attribution.ts';
import { RollupAggregator } from '../src/rollups/rollup-aggregator.ts';
import { InfluxStore, quoteIdent } from '../src/storage/influx-store.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import type { MetricPoint, QueryResult } from '../src/storage/metric-store.ts';
import {
  gpuRollupPoint,
  ROLLUP_GPU_METRICS,
  ROLLUP_MEASUREMENTS,
  samplePoints,
  usageRollupPoint,
} from '../src/storage/schema.ts';

const MIN = 60_000;
const NODES = Number(process.env.BENCH_NODES ?? 50);
const GPUS = 8;
const MINUTES = Number(process.env.BENCH_MINUTES ?? 10);
const PROJECTS = 10;
const DB = 'bench_late';

const gpuOf = (node: number, i: number, t: number): GpuMetrics => ({
  index: i,
  uuid: `GPU-${node}-${i}`,
  name: 'NVIDIA H100 80GB HBM3',
  state: 'ok',
  utilizationGpuPercent: (node * 7 + i * 13 + t) % 101,
  utilizationMemoryPercent: 20,
  memoryUsedMiB: 20_000 + ((t * 31) % 1000),
  memoryTotalMiB: 81_559,
  temperatureCelsius: 50 + (t % 20),
  powerDrawWatts: 300 + ((t * 7) % 100) / 2,
  powerLimitWatts: 700,
  fanSpeedPercent: null,
  pstate: 'P0',
  clocksSmMHz: 1980,
  clocksMemoryMHz: 2619,
});

const procsOf = (node: number): GpuProcess[] =>
  Array.from({ length: GPUS }, (_, i) => ({
    gpuUuid: `GPU-${node}-${i}`,
    pid: 1000 + i,
    usedMemoryMiB: 10_000,
    name: 'train',
    user: `user${(node + i) % 20}`,
  }));

function samplesOf(node: number, t0: number): Sample[] {
  const out: Sample[] = [];
  for (let s = 0; s < MINUTES * 60; s++) {
    out.push({
      seq: s,
      ts: t0 + s * 1000,
      gpuCollector: 'ok',
      host: null,
      gpus: Array.from({ length: GPUS }, (_, i) => gpuOf(node, i, s)),
      processes: procsOf(node),
    });
  }
  return out;
}

const projectOfUser = (user: string | null | undefined) =>
  `p${Number((user ?? 'user0').slice(4)) % PROJECTS}`;
/** One process per GPU, its user's project (so raw points' `project` tag and the shares agree). */
const attributeFn = (_node: string, _gpu: unknown, procs: readonly GpuProcess[]) =>
  procs[0] ? projectOfUser(procs[0].user) : null;
const attribute = attributionFromFn(attributeFn);

async function influxdCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, 100 Hz ticks
}

interface Figures {
  wallMs: number;
  cpuMs: number;
  influxdCpuMs: number;
  queries: number;
  pointsWritten: number;
}

async function measure(
  pid: number,
  fn: () => Promise<{ queries: number; points: number }>,
): Promise<Figures> {
  const cpu0 = process.cpuUsage();
  const db0 = await influxdCpuMs(pid);
  const t0 = performance.now();
  const r = await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    influxdCpuMs: (await influxdCpuMs(pid)) - db0,
    queries: r.queries,
    pointsWritten: r.points,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gpupulse-bench-late-'));
  const influxd = await startManagedInfluxd({ dataDir: dir });
  try {
    const store = new InfluxStore({ url: influxd.url, database: DB, timeoutMs: 60_000 });
    await store.init();
    let queries = 0;
    const reader = {
      query: (q: string): Promise<QueryResult> => {
        queries++;
        return store.query(q);
      },
    };
    const T0 = Math.floor((Date.now() - 2 * 3_600_000) / 3_600_000) * 3_600_000;
    const early = Math.ceil(NODES / 2);
    console.log(
      `rollup-late bench: ${NODES} nodes × ${GPUS} GPUs, ${MINUTES} minutes at 1 Hz; ${NODES - early} nodes' samples arrive late`,
    );

    // Raw points of every node (common to both approaches, not timed).
    const tRaw = performance.now();
    for (let n = 0; n < NODES; n++) {
      const points: MetricPoint[] = [];
      for (const s of samplesOf(n, T0))
        points.push(...samplePoints(`node-${n}`, s, s.processes!, attributeFn));
      for (let i = 0; i < points.length; i += 20_000) await store.write(points.slice(i, i + 20_000));
    }
    console.log(`  raw points written in ${((performance.now() - tRaw) / 1000).toFixed(1)} s`);

    // The on-time half: minute rollups as the server writes them.
    let pending: MetricPoint[] = [];
    const mkAgg = () =>
      new RollupAggregator({
        attribution: attribute,
        institutionOf: () => null,
        graceMs: 0,
        now: () => T0 + (MINUTES + 10) * MIN,
        emit: (points) => {
          pending.push(...points);
        },
        reader,
        database: DB,
        rebuildHours: 0,
      });
    const agg = mkAgg();
    for (let n = 0; n < early; n++)
      agg.ingest(
        `node-${n}`,
        samplesOf(n, T0).map((s) => ({ sample: s, processes: s.processes! })),
        1000,
      );
    agg.flush();
    await store.write(pending);
    pending = [];

    // B: incremental merge of the late half.
    const late = Array.from({ length: NODES - early }, (_, k) => samplesOf(early + k, T0));
    const heap0 = process.memoryUsage().heapUsed;
    let lateHeap = 0;
    const b = await measure(influxd.pid, async () => {
      queries = 0;
      for (const [k, samples] of late.entries()) {
        agg.ingest(
          `node-${early + k}`,
          samples.map((s) => ({ sample: s, processes: s.processes! })),
          1000,
        );
      }
      lateHeap = process.memoryUsage().heapUsed - heap0;
      agg.flush();
      await agg.settle();
      const n = pending.length;
      await store.write(pending);
      pending = [];
      return { queries, points: n };
    });

    const sumByProject = async (measurement: string) => {
      const res = await store.query(
        `SELECT sum(gpu_seconds_in_use) FROM ${quoteIdent(measurement)} WHERE time >= ${T0}ms AND time < ${T0 + MINUTES * MIN}ms GROUP BY "project"`,
      );
      return Object.fromEntries(res.series.map((s) => [s.tags?.project ?? '', s.values[0]![1] as number]));
    };
    const rawByProject = Object.fromEntries(
      (
        await store.query(
          `SELECT count(utilization_gpu) FROM nvidia_smi WHERE time >= ${T0}ms AND time < ${T0 + MINUTES * MIN}ms GROUP BY "project"`,
        )
      ).series.map((s) => [s.tags?.project ?? '', s.values[0]![1] as number]),
    );
    const maxErr = (got: Record<string, number>) =>
      Math.max(...Object.entries(rawByProject).map(([p, v]) => Math.abs((got[p] ?? 0) - v) / v));
    const bErr = maxErr(await sumByProject(ROLLUP_MEASUREMENTS.project['1m']));

    // A: re-aggregate every touched minute from raw with InfluxQL (into other measurements).
    const fields = ROLLUP_GPU_METRICS.map(
      ([, f]) =>
        `mean(${quoteIdent(f)}) AS ${quoteIdent(`${f}_mean`)}, max(${quoteIdent(f)}) AS ${quoteIdent(`${f}_max`)}`,
    ).join(', ');
    const a = await measure(influxd.pid, async () => {
      let q = 0;
      let written = 0;
      for (let m = 0; m < MINUTES; m++) {
        const start = T0 + m * MIN;
        const res = await store.query(
          `SELECT ${fields}, count("utilization_gpu") AS "samples", sum("power_draw") AS "energy" FROM "nvidia_smi" WHERE time >= ${start}ms AND time < ${start + MIN}ms GROUP BY "host", "uuid", "index", "name", "project"`,
        );
        q++;
        const points: MetricPoint[] = [];
        const projects = new Map<string, { inUse: number; energyWh: number }>();
        for (const s of res.series) {
          const row = Object.fromEntries(s.columns.map((c, i) => [c, s.values[0]![i]])) as Record<
            string,
            number
          >;
          const tags = s.tags ?? {};
          const project = tags.project || null;
          const metrics: Record<string, { mean: number; max: number }> = {};
          for (const [key, f] of ROLLUP_GPU_METRICS)
            metrics[key] = { mean: row[`${f}_mean`]!, max: row[`${f}_max`]! };
          const energyWh = row.energy! / 3600;
          const p = gpuRollupPoint('1m', start, {
            host: tags.host!,
            uuid: tags.uuid!,
            index: Number(tags.index),
            name: tags.name!,
            project,
            samples: row.samples!,
            metrics,
            gpuSecondsInUse: project ? row.samples! : 0,
            gpuSecondsIdleHeld: 0,
            energyWh,
          });
          p.measurement = 'reagg_gpu_1m';
          points.push(p);
          if (project) {
            const acc = projects.get(project) ?? { inUse: 0, energyWh: 0 };
            acc.inUse += row.samples!;
            acc.energyWh += energyWh;
            projects.set(project, acc);
          }
        }
        for (const [project, v] of projects) {
          const p = usageRollupPoint('1m', start, {
            kind: 'project',
            project,
            gpuSecondsInUse: v.inUse,
            gpuSecondsIdleHeld: 0,
            energyWh: v.energyWh,
            utilizationMean: null,
            gpusInUseMean: v.inUse / 60,
            gpusIdleHeldMean: 0,
            memoryUsedMean: 0,
            powerDrawMean: (v.energyWh * 3600) / 60,
          });
          p.measurement = 'reagg_project_1m';
          points.push(p);
        }
        await store.write(points);
        written += points.length;
      }
      return { queries: q, points: written };
    });
    const aErr = maxErr(await sumByProject('reagg_project_1m'));

    const row = (name: string, f: Figures, err: number) =>
      `| ${name} | ${f.wallMs.toFixed(0)} | ${(f.wallMs / MINUTES).toFixed(0)} | ${f.cpuMs.toFixed(0)} | ${f.influxdCpuMs.toFixed(0)} | ${f.queries} | ${f.pointsWritten} | ${(err * 100).toFixed(3)} % |`;
    console.log('');
    console.log(
      '| approach | wall ms | wall ms / minute | server CPU ms | influxd CPU ms | queries | points written | max per-project error vs raw |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(row('A re-aggregate from raw (InfluxQL)', a, aErr));
    console.log(row('B incremental merge (read-modify-write)', b, bErr));
    console.log('');
    console.log(
      `  B's late deltas in memory: ${(lateHeap / 1024 / 1024).toFixed(1)} MiB heap for ${(NODES - early) * MINUTES * 60} late samples (${(NODES - early) * GPUS} GPUs × ${MINUTES} min)`,
    );
    console.log(`  B merged ${agg.stats.lateMerged} late samples into ${agg.stats.minutesMerged} minutes`);
  } finally {
    await influxd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
