// Fault: dashboards whose sockets never read. 40 of them connect to a server with 200 simulated
// nodes × 8 GPUs and stop reading (TCP paused, blind pongs keep them "alive"). The server must
// not queue deltas for them without limit: it cuts them off (counted in
// gpupulse_dashboards_dropped_total) and its memory returns to where it was; a normal dashboard
// beside them keeps getting every delta on time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentile } from '../bench/proc-stats.ts';
import { connectDashboard, type TestDashboard } from './support/dashboard.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { metricLines, metricSum, readMetrics, rssMiB } from './support/metrics.ts';
import { AGENT_TOKEN, type ServerProc, startServer, stopAll } from './support/processes.ts';
import { type SimLoad, startSimLoad } from './support/sim-load.ts';
import { openStalledDashboard, type StalledDashboard } from './support/stalled-dashboard.ts';
import { sleep, waitFor } from './support/wait.ts';

const NODES = 200;
const GPUS = 8;
const STALLED = 40;
const WINDOW_MS = Number(process.env.GPUPULSE_FAULT_STALL_MS ?? 60_000);
/** RSS the server may keep at the end of the window over its level before the stalled ones (MiB). */
const GROWTH_BOUND_MIB = 64;

describe('fault: dashboards that never read (real server, real influxd)', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let load: SimLoad | undefined;
  let dash: TestDashboard | undefined;
  const stalled: StalledDashboard[] = [];

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url, GPUPULSE_LOG_LEVEL: 'warn' });
  });

  afterAll(async () => {
    for (const s of stalled) s.close();
    dash?.close();
    load?.close();
    await stopAll();
    await influx?.stop();
  });

  it(`${STALLED} stalled dashboards: server memory bounded, a normal dashboard on time`, async () => {
    load = startSimLoad({
      url: server.url,
      token: AGENT_TOKEN,
      nodes: NODES,
      gpusPerNode: GPUS,
      intervalMs: 1000,
      prefix: 'stall',
    });
    const l = load;
    await waitFor('the load connected', () => l.totals().connected === NODES, 120_000, 200);
    const d = connectDashboard(server.url);
    dash = d;
    await waitFor('the dashboard holds every node', () => d.nodes.size >= NODES, 30_000, 200);
    await sleep(5000);
    const pid = server.child.pid!;
    /** Deltas the normal dashboard gets over `ms`: count, lateness (server stamp → here), longest gap. */
    const measure = async (ms: number, during?: () => Promise<void>) => {
      const lateness: number[] = [];
      const arrivals: number[] = [];
      const onDelta = (delta: { serverTime: number }) => {
        arrivals.push(Date.now());
        lateness.push(Date.now() - delta.serverTime);
      };
      d.socket.on('fleet:delta', onDelta);
      const t0 = Date.now();
      await during?.();
      await sleep(Math.max(0, ms - (Date.now() - t0)));
      d.socket.off('fleet:delta', onDelta);
      let maxGap = 0;
      for (let i = 1; i < arrivals.length; i++) maxGap = Math.max(maxGap, arrivals[i]! - arrivals[i - 1]!);
      return { perSecond: arrivals.length / (ms / 1000), p99Ms: percentile(lateness, 99), maxGapMs: maxGap };
    };
    // The same machine without stalled dashboards: what "on time" means here.
    const control = await measure(20_000);
    const rssStart = await rssMiB(pid);
    const rss: number[] = [];
    const withStalled = await measure(WINDOW_MS, async () => {
      for (let i = 0; i < STALLED; i++) stalled.push(await openStalledDashboard(server.url));
      const timer = setInterval(() => {
        rssMiB(pid)
          .then((r) => rss.push(Math.round(r)))
          .catch(() => {});
      }, 5000);
      setTimeout(() => clearInterval(timer), WINDOW_MS).unref();
    });
    // Cut off ones close their TCP connection within the WebSocket close timeout (30 s).
    await waitFor(
      'every stalled dashboard disconnected',
      () => stalled.every((s) => s.closed()),
      45_000,
      500,
    ).catch(() => undefined);
    const rssEnd = await rssMiB(pid);
    const m = await readMetrics(server.url);
    const report = {
      control,
      withStalled,
      rssStartMiB: Math.round(rssStart),
      rssMiB: rss,
      rssEndMiB: Math.round(rssEnd),
      stalledClosedByServer: stalled.filter((s) => s.closed()).length,
      dashboardsDropped: metricLines(m, 'gpupulse_dashboards_dropped_total'),
    };
    console.info(`faults-dashboard-stall: ${JSON.stringify(report)}`);
    expect(server.child.exitCode).toBeNull();
    // bounded: every stalled dashboard cut off by the server and counted; memory back down
    expect(metricSum(m, 'gpupulse_dashboards_dropped_total')).toBe(STALLED);
    expect(report.stalledClosedByServer).toBe(STALLED);
    expect(rssEnd - rssStart, `server RSS ${rssStart} → ${rss.join(' → ')} → ${rssEnd} MiB`).toBeLessThan(
      GROWTH_BOUND_MIB,
    );
    // on time: the normal dashboard fares as it did without the stalled ones
    expect(withStalled.perSecond).toBeGreaterThanOrEqual(control.perSecond * 0.9);
    expect(withStalled.p99Ms).toBeLessThan(Math.max(2000, control.p99Ms + 1000));
    expect(withStalled.maxGapMs).toBeLessThan(Math.max(3000, control.maxGapMs + 1000));
  }, 240_000);
});
