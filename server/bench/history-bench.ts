/**
 * History benchmark: a private influxd filled with generated rollups, queried through the real
 * HTTP API. Run: pnpm --filter @gpupulse/server exec tsx bench/history-bench.ts
 *
 * Fills (1,000 nodes × 8 GPUs, 40 projects):
 *   - project_usage_1h: 40 projects × 90 days; project_usage_1m: 40 projects × 14 days (full)
 *   - cluster_usage_1h: 90 days; cluster_usage_1m: 14 days (full)
 *   - nvidia_smi_1h / nvidia_smi_1m: a subset of nodes (BENCH_GPU_NODES_1H, default 100 nodes = 800
 *     GPUs × 90 days; BENCH_GPU_NODES_1M, default 10 nodes = 80 GPUs × 14 days). Set them to 1000
 *     for the full GPU-level volume (17 M + 161 M points: hours of writing on 2 cores).
 * Then reports median and p95 (BENCH_RUNS, default 9, after one warm-up) of:
 *   - a 90-day per-project usage query (`/api/v1/usage?groupBy=project&period=day|week`)
 *   - a 24-hour cluster utilization query (`/api/v1/history?scope=cluster&metrics=utilization`)
 *   - a 90-day project history and a 14-day GPU history.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { ensureRetentionPolicies, type TierPolicies } from '../src/rollups/retention.ts';
import { InfluxStore } from '../src/storage/influx-store.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import type { MetricPoint } from '../src/storage/metric-store.ts';
import { gpuRollupPoint, type RollupTier, usageRollupPoint } from '../src/storage/schema.ts';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NODES = 1000;
const GPUS = 8;
const PROJECTS = 40;
const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const GPU_NODES_1H = env('BENCH_GPU_NODES_1H', 100);
const GPU_NODES_1M = env('BENCH_GPU_NODES_1M', 10);
const RUNS = env('BENCH_RUNS', 9);

const projects = Array.from({ length: PROJECTS }, (_, i) => `p${String(i + 1).padStart(2, '0')}`);
const institution = (i: number) => (i % 3 === 0 ? 'telco' : 'univ');
const node = (n: number) => `gpu-${String(n + 1).padStart(4, '0')}`;
/** Deterministic pseudo-random in [0, 1). */
const rnd = (a: number, b: number) => {
  const x = Math.sin(a * 12.9898 + b * 78.233) * 43758.5453;
  return x - Math.floor(x);
};

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gpupulse-bench-'));
  const influxd = await startManagedInfluxd({ dataDir: dir });
  const store = new InfluxStore({
    url: influxd.url,
    database: 'gpupulse_bench',
    kind: 'managed-influxdb',
    timeoutMs: 120_000,
  });
  let server: Awaited<ReturnType<typeof createServer>> | null = null;
  try {
    await store.init();
    const rp = await ensureRetentionPolicies(store, store.database, loadConfig({}).retention);
    const now = Date.now();
    const endH = Math.floor(now / HOUR) * HOUR;
    const endM = Math.floor(now / MIN) * MIN;
    let written = 0;
    const t0 = performance.now();
    const writer = createWriter(store, (n) => {
      written += n;
    });
    const fill = async (label: string, gen: () => Generator<MetricPoint>) => {
      const t = performance.now();
      const before = written;
      for (const p of gen()) await writer.push(p);
      await writer.flush();
      const s = (performance.now() - t) / 1000;
      console.log(`  ${label}: ${(written - before).toLocaleString('en')} points in ${s.toFixed(1)} s`);
    };
    console.log(
      `influxd ${influxd.url}; filling (GPU-level subset: ${GPU_NODES_1H} nodes 1h, ${GPU_NODES_1M} nodes 1m)`,
    );
    await fill('project_usage_1h (40 × 90 d)', () =>
      usageGen('project', '1h', endH - 90 * DAY, endH, HOUR, rp),
    );
    await fill('project_usage_1m (40 × 14 d)', () =>
      usageGen('project', '1m', endM - 14 * DAY, endM, MIN, rp),
    );
    await fill('cluster_usage_1h + _1m', function* () {
      yield* usageGen('cluster', '1h', endH - 90 * DAY, endH, HOUR, rp);
      yield* usageGen('cluster', '1m', endM - 14 * DAY, endM, MIN, rp);
    });
    await fill(`nvidia_smi_1h (${GPU_NODES_1H * GPUS} GPUs × 90 d)`, () =>
      gpuGen('1h', GPU_NODES_1H, endH - 90 * DAY, endH, HOUR, rp),
    );
    await fill(`nvidia_smi_1m (${GPU_NODES_1M * GPUS} GPUs × 14 d)`, () =>
      gpuGen('1m', GPU_NODES_1M, endM - 14 * DAY, endM, MIN, rp),
    );
    const fillS = (performance.now() - t0) / 1000;
    console.log(
      `filled ${written.toLocaleString('en')} points in ${fillS.toFixed(1)} s (${Math.round(written / fillS).toLocaleString('en')} points/s)`,
    );

    server = await createServer({
      store,
      config: { port: 0, host: '127.0.0.1', retention: loadConfig({}).retention },
    });
    const q = {
      usage90Day: `/api/v1/usage?from=now-90d&to=now&groupBy=project&period=day`,
      usage90Week: `/api/v1/usage?from=now-90d&to=now&groupBy=project&period=week`,
      cluster24h: `/api/v1/history?scope=cluster&metrics=utilization&from=now-24h&to=now`,
      project90d: `/api/v1/history?scope=project&id=p07&metrics=utilization,gpus_in_use&from=now-90d&to=now`,
      gpu14d: `/api/v1/history?scope=gpu&id=${encodeURIComponent(uuid(0, 0))}&metrics=utilization,power&from=now-14d&to=now`,
    };
    const rows: string[] = [];
    for (const [name, path] of Object.entries(q)) {
      const times: number[] = [];
      let info = '';
      for (let i = 0; i <= RUNS; i++) {
        const t = performance.now();
        const res = await fetch(server.url + path);
        const body = await res.text();
        const ms = performance.now() - t;
        if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${body.slice(0, 300)}`);
        if (i > 0) times.push(ms);
        else {
          const j = JSON.parse(body) as {
            tier?: string;
            stepMs?: number;
            rows?: unknown[];
            series?: Array<{ points: unknown[] }>;
          };
          info = j.rows
            ? `${j.rows.length} rows`
            : `tier ${j.tier}, step ${(j.stepMs ?? 0) / 1000} s, ${j.series?.reduce((a, s) => a + s.points.length, 0)} points`;
        }
      }
      times.sort((a, b) => a - b);
      const pct = (p: number) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)]!;
      rows.push(`| ${name} | \`${path}\` | ${info} | ${pct(0.5).toFixed(1)} | ${pct(0.95).toFixed(1)} |`);
    }
    console.log(
      `\n| query | request | answer | median ms | p95 ms |\n|---|---|---|---|---|\n${rows.join('\n')}`,
    );
    console.log(
      `\n(${RUNS} runs each after one warm-up; ${written.toLocaleString('en')} rollup points; fill ${fillS.toFixed(0)} s)`,
    );
  } finally {
    await server?.close();
    await store.close();
    await influxd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function uuid(n: number, g: number): string {
  return `GPU-${String(n).padStart(8, '0')}-${g}000-4000-8000-000000000000`;
}

function* usageGen(
  kind: 'project' | 'cluster',
  tier: RollupTier,
  from: number,
  to: number,
  step: number,
  rp: TierPolicies,
) {
  const win = step / 1000;
  for (let t = from; t < to; t += step) {
    const day = Math.floor(t / DAY);
    const hour = new Date(t).getUTCHours();
    const diurnal = 0.6 + 0.4 * Math.sin((hour / 24) * 2 * Math.PI);
    if (kind === 'cluster') {
      const inUse = NODES * GPUS * 0.75 * diurnal;
      const p = usageRollupPoint(tier, t, {
        kind: 'cluster',
        gpuSecondsInUse: inUse * win,
        gpuSecondsIdleHeld: inUse * 0.1 * win,
        energyWh: (inUse * 450 * win) / 3600,
        utilizationMean: 60 * diurnal,
        gpusInUseMean: inUse,
        gpusIdleHeldMean: inUse * 0.1,
        memoryUsedMean: inUse * 40_000,
        powerDrawMean: inUse * 450,
        temperatureMean: 55,
        gpusMean: NODES * GPUS,
      });
      if (rp[tier]) p.rp = rp[tier];
      yield p;
      continue;
    }
    for (const [i, project] of projects.entries()) {
      const size = ((i % 10) + 1) * 20 * diurnal * (0.8 + 0.4 * rnd(i, day));
      const p = usageRollupPoint(tier, t, {
        kind: 'project',
        project,
        institution: institution(i),
        gpuSecondsInUse: size * win,
        gpuSecondsIdleHeld: size * 0.12 * win,
        energyWh: (size * 420 * win) / 3600,
        utilizationMean: 30 + 60 * rnd(i, t / step),
        gpusInUseMean: size,
        gpusIdleHeldMean: size * 0.12,
        memoryUsedMean: size * 38_000,
        powerDrawMean: size * 420,
      });
      if (rp[tier]) p.rp = rp[tier];
      yield p;
    }
  }
}

function* gpuGen(tier: RollupTier, nodes: number, from: number, to: number, step: number, rp: TierPolicies) {
  const win = step / 1000;
  for (let t = from; t < to; t += step) {
    for (let n = 0; n < nodes; n++) {
      for (let g = 0; g < GPUS; g++) {
        const u = 100 * rnd(n * 8 + g, t / step);
        const p = gpuRollupPoint(tier, t, {
          host: node(n),
          uuid: uuid(n, g),
          index: g,
          name: 'NVIDIA H100 80GB HBM3',
          project: projects[(n * 8 + g) % PROJECTS]!,
          samples: win,
          metrics: {
            utilizationGpuPercent: { mean: u, max: Math.min(100, u + 10) },
            memoryUsedMiB: { mean: 40_000, max: 42_000 },
            temperatureCelsius: { mean: 55, max: 61 },
            powerDrawWatts: { mean: 200 + 4 * u, max: 250 + 4 * u },
          },
          gpuSecondsInUse: u > 3 ? win : 0,
          gpuSecondsIdleHeld: u <= 3 ? win : 0,
          energyWh: ((200 + 4 * u) * win) / 3600,
        });
        if (rp[tier]) p.rp = rp[tier];
        yield p;
      }
    }
  }
}

/** Batches of 20,000 points, two writes in flight. */
function createWriter(store: InfluxStore, onWritten: (n: number) => void) {
  let batch: MetricPoint[] = [];
  const inflight = new Set<Promise<void>>();
  const send = async (points: MetricPoint[]) => {
    const p = store.write(points).then(() => onWritten(points.length));
    inflight.add(p);
    p.finally(() => inflight.delete(p)).catch(() => {});
    if (inflight.size >= 2) await Promise.race(inflight);
  };
  return {
    async push(p: MetricPoint) {
      batch.push(p);
      if (batch.length >= 20_000) {
        const b = batch;
        batch = [];
        await send(b);
      }
    },
    async flush() {
      if (batch.length) await send(batch);
      batch = [];
      await Promise.all(inflight);
    },
  };
}

await main();
