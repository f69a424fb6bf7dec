// Soak: gpupulse-server + a real influxd + N simulated nodes (agent delivery rules, 1 Hz) + the
// wall in headless Chromium, for a long time. Every READ_EVERY it records the server's RSS and
// event-loop lag (/metrics), the page's JS heap after a GC (CDP), the write backlog and what the
// load has acked. At the end the load is stopped and drained, and InfluxDB is counted.
// Pass: server RSS and page heap end within 10 % of their post-warm-up level; stored = acked.
//
//   pnpm soak                       60 minutes, 1,000 nodes × 8 GPUs
//   pnpm soak --minutes 20 --nodes 1000 --gpus 8 --warmup 5 --read-every 30
//
// Readings and the summary go to test/artifacts/soak-<start>.json; a summary table to stdout.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CDPSession, Page } from 'playwright-core';
import { launchBrowser } from '../src/support/browser.ts';
import { startInfluxd, type TestInfluxd } from '../src/support/influxd.ts';
import { metricSum, readMetrics, rssMiB } from '../src/support/metrics.ts';
import { artifactsDir, repoRoot } from '../src/support/paths.ts';
import { AGENT_TOKEN, type Proc, startProcess, startServer, stopAll } from '../src/support/processes.ts';
import { sleep, waitFor } from '../src/support/wait.ts';

export interface SoakOptions {
  minutes: number;
  nodes: number;
  gpus: number;
  /** Warm-up before the reference level is taken (minutes). */
  warmupMinutes: number;
  readEverySeconds: number;
  log?: (line: string) => void;
}

export interface SoakReading {
  tSec: number;
  serverRssMiB: number;
  loopLagP99Ms: number;
  loopLagMeanMs: number;
  pageHeapMiB: number;
  pageAgeMs: number | null;
  acked: number;
  pending: number;
  writeBufferPoints: number;
  spoolPoints: number;
  unavailableAcks: number;
}

export interface SoakResult {
  options: SoakOptions;
  startedAt: string;
  readings: SoakReading[];
  rss: { reference: number; end: number; peak: number; changePct: number };
  heap: { reference: number; end: number; peak: number; changePct: number };
  loopLagP99Ms: { median: number; max: number };
  samples: { produced: number; acked: number; rejected: number; pendingAtEnd: number; droppedLocal: number };
  stored: { hostPoints: number; gpuPoints: number; expectedGpuPoints: number };
  droppedByServer: number;
  /** Readings for which /metrics did not answer within 10 s (an overloaded server). */
  metricsTimeouts: number;
  refusals: Record<string, number>;
  pass: { rss: boolean; heap: boolean; storedEqualsAcked: boolean; all: boolean };
  file: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (a: number, ref: number) => ((a - ref) / ref) * 100;
const round1 = (x: number) => Math.round(x * 10) / 10;

interface LoadTotals {
  type: string;
  samples: number;
  acked: number;
  rejected: number;
  pending: number;
  droppedLocal: number;
  connected: number;
  refusals: Record<string, number>;
}

function lastTotals(load: Proc, type = 'totals'): LoadTotals | undefined {
  const lines = load
    .output()
    .split('\n')
    .filter((l) => l.startsWith(`{"type":"${type}"`));
  const last = lines.at(-1);
  return last ? (JSON.parse(last) as LoadTotals) : undefined;
}

async function pageHeapMiB(cdp: CDPSession): Promise<number> {
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
  return usedSize / 2 ** 20;
}

async function pageAgeMs(page: Page): Promise<number | null> {
  const v = await page
    .locator('[data-testid="freshness"]')
    .first()
    .getAttribute('data-age-ms', { timeout: 5000 });
  return v === null || v === '' ? null : Number(v);
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const startedAt = new Date().toISOString();
  const prefix = 'soak';
  let influx: TestInfluxd | undefined;
  const browser = await launchBrowser();
  try {
    influx = await startInfluxd();
    const server = await startServer({ GPUPULSE_INFLUX_URL: influx.url, GPUPULSE_LOG_LEVEL: 'warn' });
    const pid = server.child.pid!;
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    await page.goto(server.url, { timeout: 120_000 });
    await page
      .locator('[data-testid="connection-state"][data-state="connected"]')
      .waitFor({ timeout: 60_000 });
    const load = startProcess(process.execPath, [
      '--import',
      'tsx',
      resolve(repoRoot, 'test/bench/soak-load.ts'),
      server.url,
      AGENT_TOKEN,
      String(o.nodes),
      String(o.gpus),
      prefix,
    ]);
    await waitFor('the load connected', () => (lastTotals(load)?.connected ?? 0) >= o.nodes, 300_000, 1000);
    const cdp = await page.context().newCDPSession(page);
    log(
      `soak: ${o.nodes} nodes × ${o.gpus} GPUs for ${o.minutes} min (warm-up ${o.warmupMinutes} min), server ${server.url}`,
    );

    const t0 = Date.now();
    const end = t0 + o.minutes * 60_000;
    const readings: SoakReading[] = [];
    let metricsTimeouts = 0;
    while (Date.now() < end) {
      const next = t0 + (readings.length + 1) * o.readEverySeconds * 1000;
      await sleep(Math.max(0, Math.min(next, end) - Date.now()));
      // An overloaded server may not answer /metrics in time: record the reading without it.
      const m = await readMetrics(server.url).catch(() => null);
      if (!m) metricsTimeouts++;
      const totals = lastTotals(load);
      const r: SoakReading = {
        tSec: Math.round((Date.now() - t0) / 1000),
        serverRssMiB: round1(await rssMiB(pid)),
        loopLagP99Ms: m ? round1(metricSum(m, 'nodejs_eventloop_lag_p99_seconds') * 1000) : Number.NaN,
        loopLagMeanMs: m ? round1(metricSum(m, 'nodejs_eventloop_lag_mean_seconds') * 1000) : Number.NaN,
        pageHeapMiB: round1(await pageHeapMiB(cdp)),
        pageAgeMs: await pageAgeMs(page).catch(() => null),
        acked: totals?.acked ?? 0,
        pending: totals?.pending ?? 0,
        writeBufferPoints: m ? metricSum(m, 'gpupulse_write_buffer_points') : Number.NaN,
        spoolPoints: m ? metricSum(m, 'gpupulse_spool_points') : Number.NaN,
        unavailableAcks: totals?.refusals.UNAVAILABLE ?? 0,
      };
      readings.push(r);
      log(
        `soak t=${r.tSec}s rss=${r.serverRssMiB}MiB lagP99=${r.loopLagP99Ms}ms heap=${r.pageHeapMiB}MiB ` +
          `age=${r.pageAgeMs}ms acked=${r.acked} pending=${r.pending} buffer=${r.writeBufferPoints} spool=${r.spoolPoints}`,
      );
      if (server.child.exitCode !== null) throw new Error(`server exited: ${server.output().slice(-3000)}`);
    }

    // Stop the load, let it send what is pending, let the server hand everything to influxd.
    load.child.kill('SIGTERM');
    await load.exited;
    const final = lastTotals(load, 'final');
    if (!final) throw new Error(`the load printed no final totals:\n${load.output().slice(-3000)}`);
    await waitFor(
      'write buffer and spool drained',
      async () => {
        const m = await readMetrics(server.url);
        return (
          metricSum(m, 'gpupulse_write_buffer_points') === 0 && metricSum(m, 'gpupulse_spool_points') === 0
        );
      },
      900_000,
      2000,
    );
    const mEnd = await readMetrics(server.url);
    const count = async (q: string) => Number((await influx!.query(q))[0]?.values[0]?.[1] ?? 0);
    const hostPoints = await count(
      `SELECT COUNT("uptime_seconds") FROM "gpupulse_host" WHERE "host" =~ /^${prefix}-/`,
    );
    const gpuPoints = await count(`SELECT COUNT("state") FROM "nvidia_smi" WHERE "host" =~ /^${prefix}-/`);

    const after = readings.filter((r) => r.tSec >= o.warmupMinutes * 60);
    const ref = after.slice(0, 3);
    const last = readings.slice(-3);
    const level = (k: 'serverRssMiB' | 'pageHeapMiB') => {
      const reference = median(ref.map((r) => r[k]));
      const endLevel = median(last.map((r) => r[k]));
      return {
        reference: round1(reference),
        end: round1(endLevel),
        peak: round1(Math.max(...after.map((r) => r[k]))),
        changePct: round1(pct(endLevel, reference)),
      };
    };
    const rss = level('serverRssMiB');
    const heap = level('pageHeapMiB');
    const lags = readings.map((r) => r.loopLagP99Ms).filter((x) => Number.isFinite(x));
    const storedEqualsAcked = hostPoints === final.acked && gpuPoints === final.acked * o.gpus;
    const pass = {
      rss: Math.abs(rss.changePct) <= 10,
      heap: Math.abs(heap.changePct) <= 10,
      storedEqualsAcked,
      all: false,
    };
    pass.all = pass.rss && pass.heap && pass.storedEqualsAcked && final.pending === 0;
    mkdirSync(artifactsDir, { recursive: true });
    const file = join(artifactsDir, `soak-${startedAt.replace(/[:.]/g, '-')}.json`);
    const result: SoakResult = {
      options: { ...o, log: undefined },
      startedAt,
      readings,
      rss,
      heap,
      loopLagP99Ms: { median: round1(median(lags)), max: round1(Math.max(...lags)) },
      samples: {
        produced: final.samples,
        acked: final.acked,
        rejected: final.rejected,
        pendingAtEnd: final.pending,
        droppedLocal: final.droppedLocal,
      },
      stored: { hostPoints, gpuPoints, expectedGpuPoints: final.acked * o.gpus },
      droppedByServer: metricSum(mEnd, 'gpupulse_storage_points_dropped_total'),
      metricsTimeouts,
      refusals: final.refusals,
      pass,
      file,
    };
    writeFileSync(file, JSON.stringify(result, null, 2));
    log(
      [
        '',
        `| soak ${o.minutes} min, ${o.nodes} nodes × ${o.gpus} GPUs | reference (after ${o.warmupMinutes} min) | end | peak | change |`,
        '|---|---|---|---|---|',
        `| server RSS (MiB) | ${rss.reference} | ${rss.end} | ${rss.peak} | ${rss.changePct} % |`,
        `| page JS heap after GC (MiB) | ${heap.reference} | ${heap.end} | ${heap.peak} | ${heap.changePct} % |`,
        `| event-loop lag p99 (ms) | median ${result.loopLagP99Ms.median} | | max ${result.loopLagP99Ms.max} | |`,
        '',
        `samples produced ${final.samples}, acked ${final.acked}, rejected ${final.rejected}, pending at end ${final.pending}; ` +
          `stored host points ${hostPoints}, GPU points ${gpuPoints} (expected ${final.acked * o.gpus}); ` +
          `server-side drops ${result.droppedByServer}; refusals ${JSON.stringify(final.refusals)}; ` +
          `/metrics timeouts ${metricsTimeouts} of ${readings.length} readings`,
        `pass: ${JSON.stringify(pass)}  (${file})`,
      ].join('\n'),
    );
    await server.stop();
    return result;
  } finally {
    await browser.close().catch(() => {});
    await stopAll();
    await influx?.stop();
  }
}

const isMain =
  process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename ?? '');
if (isMain) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '60' },
      nodes: { type: 'string', default: '1000' },
      gpus: { type: 'string', default: '8' },
      warmup: { type: 'string' },
      'read-every': { type: 'string' },
    },
  });
  const minutes = Number(values.minutes);
  const o: SoakOptions = {
    minutes,
    nodes: Number(values.nodes),
    gpus: Number(values.gpus),
    warmupMinutes: values.warmup ? Number(values.warmup) : Math.max(1, Math.min(10, minutes / 6)),
    readEverySeconds: values['read-every'] ? Number(values['read-every']) : minutes >= 20 ? 30 : 10,
  };
  runSoak(o).then(
    (r) => process.exit(r.pass.all ? 0 : 1),
    (err: Error) => {
      process.stderr.write(`soak failed: ${err.stack ?? err.message}\n`);
      process.exit(2);
    },
  );
}
