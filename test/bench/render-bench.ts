/**
 * Wall render benchmark: the real server (in-memory store), the simulator driving 1,000 nodes ×
 * 8 GPUs at 1 Hz, the wall view in Debian's headless Chromium. Prints figures; not a test.
 *
 *   pnpm --filter @gpupulse/web build
 *   pnpm --filter @gpupulse/test exec tsx bench/render-bench.ts
 *
 * Env: BENCH_SECONDS (default 60) per scenario, BENCH_NODES (1000), BENCH_GPUS (8),
 * BENCH_SCENARIOS (default `wall-1080p,kiosk-4k,nodes-1080p`; `nodes-1080p` is the 1080p wall
 * scrolled down to its node list, whose rows then update too), BENCH_PROFILE (seconds of a Chromium CPU
 * profile per scenario after the measurement, default 0: none; prints the top functions by self
 * time and writes the `.cpuprofile` next to the other artifacts), BENCH_WEB_DIR (serve another build
 * of the web app, e.g. an older commit's `web/dist`, for a before/after comparison).
 *
 * Per scenario: main-thread time per update (the app's own `fleet-update` measure = store +
 * every watcher/component it triggers, incl. the canvas redraw; and `wall-update` = the canvas
 * part alone), long tasks (PerformanceObserver), frames dropped (requestAnimationFrame gaps),
 * main-thread busy time per second from CDP (`TaskDuration`, includes socket decode, GC, paint),
 * JS heap at start and end (after a forced GC). A baseline (an empty page's rAF cadence) is
 * measured in the same run, since the machine is shared.
 */
import { cpus } from 'node:os';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { launchBrowser } from '../src/support/browser.ts';
import { startServer, startSim, stopAll } from '../src/support/processes.ts';
import { sleep, waitFor } from '../src/support/wait.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const NODES = Number(process.env.BENCH_NODES ?? 1000);
const GPUS = Number(process.env.BENCH_GPUS ?? 8);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? 'wall-1080p,kiosk-4k,nodes-1080p').split(',');
const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE ?? 0);
/**
 * BENCH_REPLAY=1: no simulator; the page feeds itself a synthetic NODES × GPUS fleet (snapshot, then
 * one delta per second patching every GPU's utilization, temperature, power and memory) through the
 * store's `applySnapshot` / `applyDelta` — what the socket feed calls — and times each update to
 * the end of Vue's flush (as the feed's `fleet-update` measure does; paint is not included). For machines where the server and the simulator cannot keep 8,000 GPUs
 * at 1 Hz (a shared 2-core box): the page's own cost without the server's.
 */
const REPLAY = process.env.BENCH_REPLAY === '1';

/** Installed before the app loads in replay mode (see REPLAY). */
const REPLAY_SCRIPT = `
(() => {
  window.__gpupulseBench = true;
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const projects = ['fu-video', 'fu-docai', 'ni-speech', 'ce-music', 'ce-3d', 'sh-medical', 'unassigned', null];
  const r = { times: [], timer: 0, nodes: [] };
  r.snapshot = (nodes, gpus) => {
    const list = [];
    for (let i = 0; i < nodes; i++) {
      const rack = String.fromCharCode(97 + Math.floor(i / 40));
      const name = 'rack-' + rack + '-' + String(i % 40 + 1).padStart(4, '0');
      const g = [];
      for (let j = 0; j < gpus; j++)
        g.push({ index: j, uuid: 'GPU-' + i + '-' + j, name: 'NVIDIA H100 80GB HBM3', state: 'ok',
          utilizationGpuPercent: Math.floor(rnd() * 100), utilizationMemoryPercent: 20, memoryUsedMiB: 1024,
          memoryTotalMiB: 81559, temperatureCelsius: 40 + Math.floor(rnd() * 40), powerDrawWatts: 300,
          powerLimitWatts: 700, fanSpeedPercent: null, pstate: 'P0', clocksSmMHz: 1980, clocksMemoryMHz: 2619,
          project: projects[Math.floor(rnd() * projects.length)], processCount: 1 });
      list.push({ node: name, status: 'online', connected: true, lastSeen: Date.now(), lastSampleTs: Date.now(),
        gpuCollector: 'ok', gpuError: null, host: { cpuPercent: 12, memoryUsedBytes: 1, memoryTotalBytes: 2,
        load1: 0, load5: 0, load15: 0, netRxBytesPerSec: 0, netTxBytesPerSec: 0, uptimeSeconds: 10 }, gpus: g });
    }
    r.nodes = list;
    window.__gpupulseFleet.applySnapshot({ serverTime: Date.now(), intervalMs: 1000,
      storage: { kind: 'memory', warning: 'bench', ok: true }, nodes: list });
  };
  r.start = (gpus) => {
    r.timer = setInterval(async () => {
      const t = Date.now();
      const patches = r.nodes.map((n) => {
        const g = [];
        for (let j = 0; j < gpus; j++)
          g.push({ index: j, utilizationGpuPercent: Math.floor(rnd() * 100), temperatureCelsius: 40 + Math.floor(rnd() * 40),
            powerDrawWatts: Math.floor(rnd() * 700), memoryUsedMiB: Math.floor(rnd() * 80000) });
        return { node: n.node, lastSeen: t, lastSampleTs: t, gpus: g };
      });
      const delta = { serverTime: t, nodes: [], patches, removed: [] };
      const start = performance.now();
      window.__gpupulseFleet.applyDelta(delta);
      // Vue queued its flush (a microtask) during applyDelta: one await later it has run, watchers
      // and the canvas redraw included — the end point of the app's own \`fleet-update\` measure.
      await Promise.resolve();
      r.times.push(performance.now() - start);
    }, 1000);
  };
  window.__replay = r;
})();
`;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A CPU profile of the page for `seconds`; prints the top functions by self time (ms per second). */
async function profile(cdp: CDPSession, name: string, seconds: number): Promise<void> {
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  await sleep(seconds * 1000);
  const { profile: p } = (await cdp.send('Profiler.stop')) as { profile: CpuProfile };
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { artifactsDir } = await import('../src/support/paths.ts');
  mkdirSync(artifactsDir, { recursive: true });
  writeFileSync(`${artifactsDir}/render-bench-${name}.cpuprofile`, JSON.stringify(p));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]!);
    if (!n) continue;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop() ?? ''}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  const secs = (p.endTime - p.startTime) / 1e6;
  const top = [...self.entries()].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]);
  console.log(`profile ${name} (${f1(secs)} s, self ms per second):`);
  for (const [k, ms] of top.slice(0, 25)) console.log(`  ${f1(ms / secs).padStart(6)}  ${k}`);
}

/** Installed before the app loads: long tasks and rAF cadence, reset by `__bench.reset()`. */
const PROBE = `
(() => {
  const b = { longTasks: [], frames: 0, dropped: 0, maxGap: 0, last: 0, start: 0 };
  b.reset = () => { b.longTasks = []; b.frames = 0; b.dropped = 0; b.maxGap = 0; b.last = 0; b.start = performance.now(); };
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) b.longTasks.push(e.duration); })
      .observe({ type: 'longtask', buffered: true });
  } catch {}
  const frame = (t) => {
    if (b.last) {
      const gap = t - b.last;
      if (gap > b.maxGap) b.maxGap = gap;
      const missed = Math.round(gap / (1000 / 60)) - 1;
      if (missed > 0) b.dropped += missed;
    }
    b.last = t;
    b.frames++;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  b.reset();
  window.__bench = b;
})();
`;

interface Probe {
  frames: number;
  dropped: number;
  maxGap: number;
  longTasks: number[];
  elapsed: number;
}

async function readProbe(page: Page): Promise<Probe> {
  return page.evaluate(() => {
    const b = (window as unknown as { __bench: Probe & { start: number } }).__bench;
    return {
      frames: b.frames,
      dropped: b.dropped,
      maxGap: b.maxGap,
      longTasks: [...b.longTasks],
      elapsed: performance.now() - b.start,
    };
  });
}

async function metrics(cdp: CDPSession): Promise<Record<string, number>> {
  const r = (await cdp.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] };
  return Object.fromEntries(r.metrics.map((m) => [m.name, m.value]));
}

async function heapAfterGc(cdp: CDPSession): Promise<number> {
  await cdp.send('HeapProfiler.collectGarbage');
  return (await metrics(cdp)).JSHeapUsedSize ?? 0;
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};
const f1 = (n: number) => n.toFixed(1);
const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

async function baseline(browser: Browser, seconds: number) {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  await page.addInitScript(PROBE);
  await page.goto('about:blank');
  await page.evaluate(() => (window as unknown as { __bench: { reset(): void } }).__bench.reset());
  await sleep(seconds * 1000);
  const p = await readProbe(page);
  await page.close();
  return {
    fps: (p.frames / p.elapsed) * 1000,
    dropped: p.dropped,
    maxGap: p.maxGap,
    seconds: p.elapsed / 1000,
  };
}

async function scenario(browser: Browser, url: string, name: string) {
  const k4 = name.includes('4k');
  const page = await browser.newPage({
    viewport: k4 ? { width: 3840, height: 2160 } : { width: 1920, height: 1080 },
  });
  await page.addInitScript(PROBE);
  if (REPLAY) await page.addInitScript(REPLAY_SCRIPT);
  await page.goto(name.startsWith('kiosk') ? `${url}/?kiosk=1` : url, {
    timeout: 120_000,
    waitUntil: 'commit',
  });
  if (REPLAY) {
    await page.locator('[data-testid="wall-page"]').waitFor({ timeout: 60_000 });
    await sleep(3000); // the server's own (empty) snapshot first
    await page.evaluate(
      ([n, g]) => {
        const r = (
          window as unknown as { __replay: { snapshot(n: number, g: number): void; start(g: number): void } }
        ).__replay;
        r.snapshot(n, g);
        r.start(g);
      },
      [NODES, GPUS] as const,
    );
  }
  await waitFor(
    'the wall to lay out every GPU',
    () =>
      page.evaluate(
        (n) => (window as unknown as { __gpupulseWall?: { nodes: number } }).__gpupulseWall?.nodes === n,
        NODES,
      ),
    90_000,
    500,
  );
  // `nodes-…`: the page scrolled down to the node list (on screen, its rows update every second).
  if (name.startsWith('nodes')) await page.locator('[data-testid="node-list"]').scrollIntoViewIfNeeded();
  await sleep(5000); // warm-up: JIT, first full draws
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const heap0 = await heapAfterGc(cdp);
  const m0 = await metrics(cdp);
  const before = await page.evaluate(() => {
    const w = window as unknown as {
      __bench: { reset(): void };
      __gpupulsePerf: Record<string, { count: number }>;
    };
    w.__bench.reset();
    const r = (window as unknown as { __replay?: { times: number[] } }).__replay;
    if (r) r.times = [];
    return {
      fleet: w.__gpupulsePerf['fleet-update']?.count ?? 0,
      wall: w.__gpupulsePerf['wall-update']?.count ?? 0,
    };
  });
  await sleep(SECONDS * 1000);
  const probe = await readProbe(page);
  const m1 = await metrics(cdp);
  // No named helpers inside evaluate(): tsx's keepNames would reference a missing `__name`.
  const perf = await page.evaluate(() => {
    const w = window as unknown as {
      __gpupulsePerf: Record<string, { count: number; recent: { toArray(): number[] } }>;
      __gpupulseWall: { tile: number; last: { tiles: number } | null };
    };
    const f = w.__gpupulsePerf['fleet-update'];
    const c = w.__gpupulsePerf['wall-update'];
    const r = (window as unknown as { __replay?: { times: number[] } }).__replay;
    if (r)
      return {
        fleet: { count: r.times.length, recent: [...r.times] },
        wall: { count: c?.count ?? 0, recent: c?.recent.toArray() ?? [] },
        tile: w.__gpupulseWall.tile,
        lastTiles: w.__gpupulseWall.last?.tiles ?? 0,
        replay: true,
      };
    return {
      fleet: { count: f?.count ?? 0, recent: f?.recent.toArray() ?? [] },
      wall: { count: c?.count ?? 0, recent: c?.recent.toArray() ?? [] },
      tile: w.__gpupulseWall.tile,
      lastTiles: w.__gpupulseWall.last?.tiles ?? 0,
    };
  });
  const heap1 = await heapAfterGc(cdp);
  if (PROFILE_SECONDS > 0) await profile(cdp, name, PROFILE_SECONDS);
  const dom = await page.evaluate(() => document.getElementsByTagName('*').length);
  await page.close();
  const updates = 'replay' in perf ? perf.fleet.count : perf.fleet.count - before.fleet;
  const fleetMs = perf.fleet.recent.slice(-updates);
  const wallMs = perf.wall.recent.slice(-(perf.wall.count - before.wall));
  const seconds = probe.elapsed / 1000;
  return {
    name,
    viewport: k4 ? '3840×2160' : '1920×1080',
    seconds,
    tilePx: perf.tile,
    updates,
    updateMs: { p50: pct(fleetMs, 50), p95: pct(fleetMs, 95), max: Math.max(0, ...fleetMs) },
    canvasMs: { p50: pct(wallMs, 50), p95: pct(wallMs, 95), max: Math.max(0, ...wallMs) },
    tilesPerUpdate: perf.lastTiles,
    longTasks: {
      count: probe.longTasks.length,
      p95: pct(probe.longTasks, 95),
      max: Math.max(0, ...probe.longTasks),
    },
    busyMsPerSecond: (((m1.TaskDuration ?? 0) - (m0.TaskDuration ?? 0)) * 1000) / seconds,
    scriptMsPerSecond: (((m1.ScriptDuration ?? 0) - (m0.ScriptDuration ?? 0)) * 1000) / seconds,
    fps: (probe.frames / probe.elapsed) * 1000,
    framesDropped: probe.dropped,
    maxFrameGapMs: probe.maxGap,
    heapStartMB: mb(heap0),
    heapEndMB: mb(heap1),
    domElements: dom,
  };
}

async function main() {
  console.log(
    `render-bench${REPLAY ? ' (replay)' : ''}: ${NODES} nodes × ${GPUS} GPUs at 1 Hz, ${SECONDS} s per scenario, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`,
  );
  const server = await startServer({
    GPUPULSE_INFLUX_URL: '',
    GPUPULSE_INFLUX_BINARY: '/nonexistent',
    // Another build of the web app (e.g. an older commit's, for a before/after comparison).
    ...(process.env.BENCH_WEB_DIR ? { GPUPULSE_WEB_DIR: process.env.BENCH_WEB_DIR } : {}),
  });
  if (!REPLAY)
    startSim(server.url, ['--nodes', String(NODES), '--gpus-per-node', String(GPUS), '--interval', '1000']);
  if (!REPLAY)
    await waitFor(
      `${NODES * GPUS} GPUs at the server`,
      async () =>
        ((await (await fetch(`${server.url}/api/v1/health`)).json()) as { gpus: number }).gpus >=
        NODES * GPUS,
      120_000,
      1000,
    );
  const browser = await launchBrowser();
  try {
    const base = await baseline(browser, 10);
    console.log(
      `baseline (about:blank, same run): ${f1(base.fps)} fps, ${base.dropped} frames dropped in ${f1(base.seconds)} s, max gap ${f1(base.maxGap)} ms`,
    );
    const results = [];
    for (const s of SCENARIOS) {
      const r = await scenario(browser, server.url, s.trim());
      results.push(r);
      console.log(JSON.stringify(r));
    }
    console.log(
      '\n| scenario | viewport | tile px | updates | update ms p50 / p95 / max | canvas ms p50 / p95 | long tasks (max ms) | main thread busy ms/s | fps | frames dropped | heap start → end (MB, after GC) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of results)
      console.log(
        `| ${r.name} | ${r.viewport} | ${r.tilePx} | ${r.updates} in ${f1(r.seconds)} s | ${f1(r.updateMs.p50)} / ${f1(r.updateMs.p95)} / ${f1(r.updateMs.max)} | ${f1(r.canvasMs.p50)} / ${f1(r.canvasMs.p95)} | ${r.longTasks.count} (${f1(r.longTasks.max)}) | ${f1(r.busyMsPerSecond)} | ${f1(r.fps)} | ${r.framesDropped} | ${r.heapStartMB} → ${r.heapEndMB} |`,
      );
    console.log(`| baseline: empty page | 1920×1080 | | | | | | | ${f1(base.fps)} | ${base.dropped} | |`);
  } finally {
    await browser.close();
    await stopAll();
  }
}

await main();
