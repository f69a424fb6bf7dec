// Fault: the server is SIGKILLed (no flush, no goodbye) and started again on the same port and
// data dir, while real agents (gpupulse-agent + fake nvidia-smi, each with a disk spool) keep
// sampling every second. Afterwards every node's samples in InfluxDB have no gap longer than one
// interval (plus jitter) — the agents replayed what the dead server never stored — and exactly
// as many points as the agent produced. A dashboard in Chromium and a plain Socket.IO dashboard
// client reconnect and resync by themselves (no reload, no code of the test's).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentLogLines } from './support/agent-support.ts';
import { launchBrowser, screenshot } from './support/browser.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { type Proc, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { sleep, waitFor } from './support/wait.ts';

const INTERVAL_MS = 1000;
const NODES = ['kill-a', 'kill-b', 'kill-c'];
const DOWN_MS = 10_000;

async function hostTimes(influx: TestInfluxd, node: string): Promise<number[]> {
  const series = await influx.query(`SELECT "uptime_seconds" FROM "gpupulse_host" WHERE "host" = '${node}'`);
  return (series[0]?.values ?? []).map((v) => Number(v[0])).sort((a, b) => a - b);
}

describe('fault: server SIGKILLed and restarted while agents keep sampling (real agents, real influxd)', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let browser: Browser;
  let dataDir: string;
  const spools: string[] = [];

  beforeAll(async () => {
    influx = await startInfluxd();
    dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-kill-'));
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url }, { dataDir });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stopAll();
    await influx?.stop();
    for (const d of [dataDir, ...spools]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('no gap longer than one interval per node after replay; dashboards reconnect and resync', async () => {
    const agents: Proc[] = [];
    for (const node of NODES) {
      const dir = await mkdtemp(join(tmpdir(), 'gpupulse-kill-spool-'));
      spools.push(dir);
      agents.push(
        startAgent({
          server: server.url,
          node,
          intervalMs: INTERVAL_MS,
          extraArgs: ['--spool-dir', dir, '--kmsg', 'off'],
        }),
      );
    }
    // A plain dashboard client with the reconnect settings of web/src/services/socket.ts.
    const snapshots: { at: number; nodes: { node: string; status: string; lastSeen: number | null }[] }[] =
      [];
    const dash = io(`${server.url}/dashboard`, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionAttempts: Number.POSITIVE_INFINITY,
      reconnectionDelay: 500,
      reconnectionDelayMax: 10_000,
    });
    dash.on('fleet:snapshot', (s: { nodes: { node: string; status: string; lastSeen: number | null }[] }) =>
      snapshots.push({ at: Date.now(), nodes: s.nodes }),
    );
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(server.url);
    const state = page.locator('[data-testid="connection-state"]');
    await waitFor(
      'the page connected',
      async () => (await state.getAttribute('data-state')) === 'connected',
      30_000,
      200,
    );
    for (const node of NODES)
      await waitFor(
        `${node} in InfluxDB`,
        async () => (await hostTimes(influx, node)).length >= 3,
        30_000,
        250,
      );

    server.child.kill('SIGKILL');
    await server.exited;
    const killedAt = Date.now();
    await waitFor(
      'the page notices',
      async () => (await state.getAttribute('data-state')) !== 'connected',
      15_000,
      100,
    );
    await screenshot(page, 'faults-server-kill-reconnecting');
    await sleep(DOWN_MS - (Date.now() - killedAt));
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url }, { port: server.port, dataDir });
    const restartedAt = Date.now();

    // Dashboards: reconnect and resync without help.
    await waitFor(
      'the page reconnected',
      async () => (await state.getAttribute('data-state')) === 'connected',
      30_000,
      200,
    );
    const fresh = page.locator('[data-testid="freshness"]');
    await waitFor(
      'the page gets fresh data',
      async () => (await fresh.getAttribute('data-stale')) === 'false',
      30_000,
      200,
    );
    const resync = await waitFor(
      'a new snapshot on the reconnected dashboard socket',
      () => snapshots.find((s) => s.at > restartedAt),
      30_000,
      200,
    );
    expect(resync.at).toBeGreaterThan(restartedAt);
    await waitFor(
      'every agent back online',
      async () => {
        const body = (await (await fetch(`${server.url}/api/v1/fleet`)).json()) as {
          nodes: { node: string; status: string }[];
        };
        return NODES.every((n) => body.nodes.some((x) => x.node === n && x.status === 'online'));
      },
      30_000,
      250,
    );
    await screenshot(page, 'faults-server-kill-resynced');

    // Agents: replay what the killed server never stored, then stop cleanly.
    await sleep(10_000);
    const produced: Record<string, { firstSeq: number; nextSeq: number; unsent: number }> = {};
    for (const [i, a] of agents.entries()) {
      expect(await a.stop(10_000)).toBe(0);
      const line = agentLogLines(a.output(), 'stopped').at(-1);
      if (!line) throw new Error(`agent did not log "stopped":\n${a.output().slice(-2000)}`);
      produced[NODES[i]!] = line as unknown as { firstSeq: number; nextSeq: number; unsent: number };
    }
    const report: Record<string, unknown> = {};
    for (const node of NODES) {
      const p = produced[node]!;
      expect(p.unsent, `${node} left samples unsent`).toBe(0);
      const times = await waitFor(
        `every sample of ${node} stored`,
        async () => {
          const t = await hostTimes(influx, node);
          return t.length >= p.nextSeq - p.firstSeq ? t : undefined;
        },
        30_000,
        500,
      ).catch(() => hostTimes(influx, node));
      let maxGap = 0;
      let gapAt = 0;
      for (let k = 1; k < times.length; k++) {
        const g = times[k]! - times[k - 1]!;
        if (g > maxGap) {
          maxGap = g;
          gapAt = times[k - 1]!;
        }
      }
      report[node] = {
        produced: p.nextSeq - p.firstSeq,
        stored: times.length,
        distinct: new Set(times).size,
        maxGapMs: maxGap,
        gapAtMsFromKill: gapAt - killedAt,
      };
      expect(times.length, `${node}: stored vs produced`).toBe(p.nextSeq - p.firstSeq);
      expect(new Set(times).size).toBe(times.length);
      expect(maxGap, `${node}: longest gap ${maxGap} ms, ${gapAt - killedAt} ms after the kill`).toBeLessThan(
        INTERVAL_MS * 1.5,
      );
    }
    // Points the killed server had acked but not yet written (its write buffer flushes once a
    // second), handed on by the write journal at the restart — the gap-free result above counts
    // them; this says how many there were in this run.
    const metricsText = await (await fetch(`${server.url}/metrics`)).text();
    report.journalRecovered = Number(
      /gpupulse_journal_points_total\{result="recovered"\} (\d+)/.exec(metricsText)?.[1] ?? 0,
    );
    console.info(`faults-server-kill: ${JSON.stringify(report)}`);
    dash.close();
  }, 180_000);
});
