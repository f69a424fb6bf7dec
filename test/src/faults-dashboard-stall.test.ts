// Fault: dashboards whose sockets never read. 40 of them connect to a server with 200 simulated
// nodes × 8 GPUs and stop reading (TCP paused, blind pongs keep them "alive"). The server must
// not queue deltas for them without limit: it cuts them off (counted in
// gpupulse_dashboards_dropped_total) and its memory levels off; a normal dashboard beside them
// keeps getting deltas as it did before they came.
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
/**
 * RSS the server may keep at the end over its level before the stalled ones (MiB): 40 snapshots in
 * flight, what the allocator keeps of them, GC swings.
 */
const GROWTH_BOUND_MIB = 110;

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
    // The stalled ones connect (each costs the server one snapshot, like any dashboard), then the
    // window runs while they sit there unread until the server cuts them off.
    for (let i = 0; i < STALLED; i++) stalled.push(await openStalledDashboard(server.url));
    const timer = setInterval(() => {
      rssMiB(pid)
        .then((r) => rss.push(Math.round(r)))
        .catch(() => {});
    }, 5000);
    await sleep(3000);
    const withStalled = await measure(WINDOW_MS);
    clearInterval(timer);
    // The server's view: every stalled one cut off and gone, the normal one still there. (The
    // stalled clients may never see the close: their unread data sits before the FIN.)
    await waitFor(
      'only the normal dashboard left',
      async () => {
        const x = await readMetrics(server.url);
        return (
          metricSum(x, 'gpupulse_dashboards_dropped_total') === STALLED &&
          metricSum(x, 'gpupulse_dashboards_connected') === 1
        );
      },
      45_000,
      1000,
    ).catch(() => undefined);
    const rssEnd = await rssMiB(pid);
    const m = await readMetrics(server.url);
    const report = {
      control,
      withStalled,
      rssStartMiB: Math.round(rssStart),
      rssMiB: rss,
      rssEndMiB: Math.round(rssEnd),
      stalledTcpClosedSeenByClient: stalled.filter((s) => s.closed()).length,
      dashboardsDropped: metricLines(m, 'gpupulse_dashboards_dropped_total'),
    };
    console.info(`faults-dashboard-stall: ${JSON.stringify(report)}`);
    expect(server.child.exitCode).toBeNull();
    // bounded: every stalled dashboard cut off by the server and counted; memory back down
    expect(metricSum(m, 'gpupulse_dashboards_dropped_total')).toBe(STALLED);
    expect(metricSum(m, 'gpupulse_dashboards_connected')).toBe(1);
    expect(d.socket.connected).toBe(true);
    // Bounded: the level at the end (the median of the last readings, or the last one if higher)
    // stays within GROWTH_BOUND_MIB of the start. Measured: +34 to +62 MiB with the cut-off; without
    // it (the queue unbounded) the RSS rose 306 → 376 MiB over the window and 451 MiB 45 s later
    // (+133), still rising. RSS is noisy here (GC and allocator swings of ±30 MiB at this load on a
    // CI machine), so no finer plateau test; the JS heap does not show the queued frames at all.
    const trace = `server RSS ${Math.round(rssStart)} → ${rss.join(' → ')} → ${Math.round(rssEnd)} MiB`;
    const endLevel = Math.max(percentile(rss.slice(-3), 50), rssEnd);
    expect(endLevel - rssStart, trace).toBeLessThan(GROWTH_BOUND_MIB);
    // on time: the normal dashboard fares as it did without the stalled ones
    expect(withStalled.perSecond).toBeGreaterThanOrEqual(control.perSecond * 0.75);
    expect(withStalled.p99Ms).toBeLessThan(Math.max(2000, control.p99Ms + 1000));
    expect(withStalled.maxGapMs).toBeLessThan(Math.max(3000, control.maxGapMs + 1000));
  }, 240_000);
});
