// Fault: a reconnect storm — 2,000 agent connections opened within 10 s (what a server sees when a
// whole cluster reconnects after a network blip or a server restart), each then sampling every
// second with an agent's delivery rules. The server (a real process on a real influxd) must not
// crash, its memory must stay bounded, and every node must have a sample accepted within 60 s.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { rssMiB } from './support/metrics.ts';
import { AGENT_TOKEN, type ServerProc, startServer, stopAll } from './support/processes.ts';
import { type SimLoad, startSimLoad } from './support/sim-load.ts';
import { waitFor } from './support/wait.ts';

const AGENTS = Number(process.env.GPUPULSE_FAULT_STORM_AGENTS ?? 2000);
const CONNECT_WITHIN_MS = 10_000;
const ACCEPT_WITHIN_MS = 60_000;
/** Server RSS bound during the storm (MiB): the steady budget at 1,000 × 8 is 300 MiB. */
const RSS_BOUND_MIB = 512;

describe(`fault: reconnect storm of ${AGENTS} agents within 10 s (real server, real influxd)`, () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let load: SimLoad | undefined;

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url, GPUPULSE_LOG_LEVEL: 'warn' });
  });

  afterAll(async () => {
    load?.close();
    await stopAll();
    await influx?.stop();
  });

  it('no crash, RSS bounded, every agent accepted within 60 s', async () => {
    const pid = server.child.pid!;
    const rssBefore = await rssMiB(pid);
    let rssPeak = rssBefore;
    const rssTimer = setInterval(() => {
      rssMiB(pid)
        .then((r) => {
          if (r > rssPeak) rssPeak = r;
        })
        .catch(() => {});
    }, 250);
    const t0 = Date.now();
    load = startSimLoad({
      url: server.url,
      token: AGENT_TOKEN,
      nodes: AGENTS,
      gpusPerNode: 1,
      intervalMs: 1000,
      prefix: 'storm',
      connectWithinMs: CONNECT_WITHIN_MS,
      maxBatch: 60,
    });
    const l = load;
    try {
      const allConnectedAfter = await waitFor(
        'every agent connected',
        () => (l.totals().everConnected === AGENTS ? Date.now() - t0 : undefined),
        ACCEPT_WITHIN_MS,
        100,
      );
      const allAcceptedAfter = await waitFor(
        'a sample of every agent accepted',
        () => ([...l.ackedByNode().values()].every((a) => a > 0) ? Date.now() - t0 : undefined),
        ACCEPT_WITHIN_MS - (Date.now() - t0),
        200,
      );
      // a few more seconds of steady load after the storm
      await new Promise((r) => setTimeout(r, 5000));
      const health = (await (await fetch(`${server.url}/api/v1/health`)).json()) as { agents: number };
      const totals = l.totals();
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
      const report = {
        agents: AGENTS,
        allConnectedAfterMs: allConnectedAfter,
        allAcceptedAfterMs: allAcceptedAfter,
        rssBeforeMiB: Math.round(rssBefore),
        rssPeakMiB: Math.round(Math.max(rssPeak, hwm)),
        rssNowMiB: Math.round(await rssMiB(pid)),
        connectErrors: totals.connectErrors,
        refusals: totals.refusals,
        acked: totals.acked,
        rejected: totals.rejected,
        healthAgents: health.agents,
      };
      console.info(`faults-storm: ${JSON.stringify(report)}`);
      expect(server.child.exitCode).toBeNull();
      expect(health.agents).toBe(AGENTS);
      expect(totals.rejected).toBe(0);
      expect(allAcceptedAfter).toBeLessThan(ACCEPT_WITHIN_MS);
      expect(report.rssPeakMiB).toBeLessThan(RSS_BOUND_MIB);
    } finally {
      clearInterval(rssTimer);
    }
  }, 180_000);
});
