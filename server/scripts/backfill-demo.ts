/**
 * Demo only: writes generated history (hourly project and cluster rollups) for the past N days
 * (default 35) into the demo's storage, so the demo shows trends and a report for last month at
 * once. Uses the server's own configuration (GPUPULSE_* variables), projects file, retention
 * policies and point builders (storage/schema.ts), and the same managed influxd the server runs
 * on GPUPULSE_DATA_DIR (started here, stopped before the server starts). Runs once per data
 * directory (`<dataDir>/demo-backfill.json`); with GPUPULSE_INFLUX_URL it writes there.
 * Without influxd (the in-memory store keeps 2 hours) it says so and does nothing.
 *
 *   node server/bin/gpupulse-demo-backfill.mjs [--days 35] [--force]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { parseProjectsFile } from '../src/projects/projects-file.ts';
import { ensureRetentionPolicies } from '../src/rollups/retention.ts';
import { InfluxStore } from '../src/storage/influx-store.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import type { MetricPoint } from '../src/storage/metric-store.ts';
import { usageRollupPoint } from '../src/storage/schema.ts';

const HOUR = 3_600_000;
const args = process.argv.slice(2);
const days = Number(args[args.indexOf('--days') + 1] ?? 35) || 35;
const force = args.includes('--force');
const say = (m: string) => process.stderr.write(`backfill: ${m}\n`);

/** Deterministic pseudo-random numbers (mulberry32), so every demo shows the same month. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function which(binary: string): string | null {
  if (binary.includes('/')) return existsSync(binary) ? binary : null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, binary);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const marker = join(config.dataDir, 'demo-backfill.json');
  if (existsSync(marker) && !force) {
    say(`already done for ${config.dataDir} (${marker}); --force writes again`);
    return;
  }
  if (!config.projectsFile) throw new Error('GPUPULSE_PROJECTS is not set');
  const projects = parseProjectsFile(readFileSync(config.projectsFile, 'utf8'), config.projectsFile);

  let stop = async () => {};
  let url = config.influx.url;
  if (!url) {
    const binary = which(config.influx.binary);
    if (!binary) {
      say('no influxd here: the demo runs on the in-memory store (2 hours); no history written');
      return;
    }
    const managed = await startManagedInfluxd({ dataDir: join(config.dataDir, 'influxdb'), binary });
    url = managed.url;
    stop = () => managed.stop();
  }
  try {
    const store = new InfluxStore({
      url,
      database: config.influx.database,
      token: config.influx.token,
      username: config.influx.username,
      password: config.influx.password,
      kind: config.influx.url ? 'influxdb' : 'managed-influxdb',
    });
    await store.init();
    const rp = await ensureRetentionPolicies(store, config.influx.database, config.retention);
    const points = generate(projects, days, Date.now(), rp['1h']);
    for (let i = 0; i < points.length; i += 5000) await store.write(points.slice(i, i + 5000));
    await store.close?.();
    writeFileSync(marker, JSON.stringify({ at: new Date().toISOString(), days, points: points.length }));
    say(`wrote ${points.length} hourly rollup points for the past ${days} days`);
  } finally {
    await stop();
  }
}

/**
 * Hourly usage per project: a daily and weekly rhythm around each project's size (its quota, else
 * 8 GPUs), some GPUs held idle (more at night and at weekends), power ~550 W busy / ~90 W idle.
 */
function generate(
  projects: ReturnType<typeof parseProjectsFile>,
  days: number,
  now: number,
  rp: string | undefined,
): MetricPoint[] {
  const out: MetricPoint[] = [];
  const end = Math.floor(now / HOUR) * HOUR - HOUR;
  const start = end - days * 24 * HOUR;
  const list = [...projects.projects.values()];
  const totalGpus = Math.max(
    8,
    list.reduce((s, p) => s + (p.quotaGpus ?? 8), 0),
  );
  list.forEach((p, i) => {
    const r = rng(1000 + i);
    const size = p.quotaGpus ?? 8;
    for (let t = start; t < end; t += HOUR) {
      const d = new Date(t);
      const hour = d.getHours();
      const weekend = d.getDay() === 0 || d.getDay() === 6;
      const day = hour >= 9 && hour < 21 ? 1 : 0.55;
      const load = Math.min(1, day * (weekend ? 0.6 : 1) * (0.55 + 0.45 * r()));
      const held = size * load;
      const idleShare = (hour >= 22 || hour < 7 ? 0.3 : 0.12) * (0.5 + r());
      const idle = held * Math.min(0.8, idleShare);
      const busy = held - idle;
      const energyWh = busy * (520 + 60 * r()) + idle * 90;
      out.push(
        withRp(
          usageRollupPoint('1h', t, {
            kind: 'project',
            project: p.id,
            institution: p.institution,
            gpuSecondsInUse: held * 3600,
            gpuSecondsIdleHeld: idle * 3600,
            energyWh,
            energyWhIdleHeld: idle * 90,
            utilizationMean: held > 0 ? (busy / held) * (70 + 25 * r()) : null,
            gpusInUseMean: held,
            gpusIdleHeldMean: idle,
            memoryUsedMean: held * 42_000,
            powerDrawMean: energyWh,
          }),
          rp,
        ),
      );
    }
  });
  // The cluster: every GPU observed each hour, the projects' use summed.
  const byHour = new Map<number, { held: number; idle: number; energy: number; idleEnergy: number }>();
  for (const pt of out) {
    const h = byHour.get(pt.ts) ?? { held: 0, idle: 0, energy: 0, idleEnergy: 0 };
    h.held += pt.floats!.gpu_seconds_in_use! / 3600;
    h.idle += pt.floats!.gpu_seconds_idle_held! / 3600;
    h.energy += pt.floats!.energy_wh!;
    h.idleEnergy += pt.floats!.energy_wh_idle_held ?? 0;
    byHour.set(pt.ts, h);
  }
  for (const [t, h] of byHour) {
    const freeWh = (totalGpus - h.held) * 70;
    out.push(
      withRp(
        usageRollupPoint('1h', t, {
          kind: 'cluster',
          gpuSecondsInUse: h.held * 3600,
          gpuSecondsIdleHeld: h.idle * 3600,
          energyWh: h.energy + freeWh,
          energyWhIdleHeld: h.idleEnergy,
          utilizationMean: (100 * (h.held - h.idle)) / totalGpus,
          gpusInUseMean: h.held,
          gpusIdleHeldMean: h.idle,
          memoryUsedMean: h.held * 42_000,
          powerDrawMean: h.energy + freeWh,
          temperatureMean: 48,
          gpusMean: totalGpus,
        }),
        rp,
      ),
    );
  }
  return out;
}

function withRp(p: MetricPoint, rp: string | undefined): MetricPoint {
  if (rp) p.rp = rp;
  return p;
}

main().catch((err: unknown) => {
  say(`failed: ${(err as Error).message}`);
  process.exit(1);
});
