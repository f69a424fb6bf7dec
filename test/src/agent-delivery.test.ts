// Gap-free delivery on real parts: gpupulse-agent with a disk spool → gpupulse-server → real influxd.
// The server goes away for 60 s (and, separately, the agent is SIGKILLed mid-outage and started
// again on the same spool); after recovery InfluxDB holds every sample the agent produced exactly
// once: the number of `gpupulse_host` points of the node equals the agent's sequence range
// (seq 0 … nextSeq − 1 from its own `stopped` log line), with no holes in time.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentLogLines, startServerOnPort } from './support/agent-support.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { agentBin, fakeNvidiaSmi } from './support/paths.ts';
import { type Proc, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { sleep, waitFor } from './support/wait.ts';

const INTERVAL_MS = 500;
const OUTAGE_MS = Number(process.env.GPUPULSE_TEST_OUTAGE_MS ?? 60_000);

async function hostTimes(influx: TestInfluxd, node: string): Promise<number[]> {
  const series = await influx.query(
    `SELECT uptime_seconds FROM gpupulse_host WHERE host = '${node.replace(/'/g, "\\'")}'`,
  );
  return (series[0]?.values ?? []).map((v) => Number(v[0])).sort((a, b) => a - b);
}

function stoppedLine(agent: Proc): { firstSeq: number; nextSeq: number; unsent: number } {
  const line = agentLogLines(agent.output(), 'stopped').at(-1);
  if (!line) throw new Error(`agent did not log "stopped":\n${agent.output().slice(-3000)}`);
  return line as unknown as { firstSeq: number; nextSeq: number; unsent: number };
}

describe('agent delivery across outages (real server, real influxd)', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  const spoolDirs: string[] = [];

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url });
  });

  afterAll(async () => {
    await stopAll();
    await influx?.stop();
    for (const d of spoolDirs) await rm(d, { recursive: true, force: true });
  });

  const spool = async () => {
    const d = await mkdtemp(join(tmpdir(), 'gpupulse-agent-spool-'));
    spoolDirs.push(d);
    return d;
  };

  const restartServer = async () => {
    const port = server.port;
    server = await startServerOnPort(port, { GPUPULSE_INFLUX_URL: influx.url });
  };

  it(
    `server down for ${OUTAGE_MS / 1000} s: every sample of the outage lands in InfluxDB exactly once`,
    async () => {
      const node = 'delivery-outage';
      const dir = await spool();
      const agent = startAgent({
        server: server.url,
        node,
        intervalMs: INTERVAL_MS,
        extraArgs: ['--spool-dir', dir, '--kmsg', 'off'],
      });
      await waitFor(
        'first points in InfluxDB',
        async () => (await hostTimes(influx, node)).length >= 3,
        30_000,
        250,
      );

      await server.stop();
      const outageStart = Date.now();
      await sleep(OUTAGE_MS);
      const outageEnd = Date.now();
      await restartServer();

      // Replay is bounded (≤ 10 batches/s of ≤ 500 samples): the backlog drains within seconds.
      await waitFor(
        'the backlog replayed',
        async () => {
          const t = await hostTimes(influx, node);
          return (
            t.length > 0 &&
            (t.at(-1) ?? 0) > outageEnd &&
            t.filter((x) => x > outageStart && x < outageEnd).length >= (OUTAGE_MS / INTERVAL_MS) * 0.9
          );
        },
        60_000,
        500,
      );
      expect(await agent.stop(10_000)).toBe(0);
      const { nextSeq, firstSeq, unsent } = stoppedLine(agent);
      expect(firstSeq).toBe(0);
      expect(unsent).toBe(0);

      const times = await waitFor(
        'every sample in InfluxDB',
        async () => {
          const t = await hostTimes(influx, node);
          return t.length >= nextSeq ? t : undefined;
        },
        20_000,
        250,
      );
      expect(times.length).toBe(nextSeq); // exactly once: no loss, no duplicate points
      expect(new Set(times).size).toBe(times.length);
      const inOutage = times.filter((t) => t > outageStart && t < outageEnd);
      expect(inOutage.length).toBeGreaterThanOrEqual(Math.floor(OUTAGE_MS / INTERVAL_MS) - 2);
      let maxGap = 0;
      for (let i = 1; i < times.length; i++) maxGap = Math.max(maxGap, (times[i] ?? 0) - (times[i - 1] ?? 0));
      expect(maxGap).toBeLessThan(3 * INTERVAL_MS);
      // live first, then the backlog in bounded batches, flagged as replay
      expect(agent.output()).toMatch(/"msg":"connected to server"/);
    },
    OUTAGE_MS + 180_000,
  );

  it('agent SIGKILLed mid-outage and started again on the same spool: nothing lost, seq continues', async () => {
    const node = 'delivery-restart';
    const dir = await spool();
    const args = {
      server: server.url,
      node,
      intervalMs: INTERVAL_MS,
      extraArgs: ['--spool-dir', dir, '--kmsg', 'off'],
    };
    const first = startAgent(args);
    await waitFor(
      'first points in InfluxDB',
      async () => (await hostTimes(influx, node)).length >= 3,
      30_000,
      250,
    );

    await server.stop();
    await sleep(8_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = startAgent(args);
    const starting = await waitFor(
      'second agent starting',
      () => agentLogLines(second.output(), 'gpupulse-agent starting')[0],
      20_000,
    );
    expect(Number(starting.firstSeq)).toBeGreaterThan(10); // continues where the killed agent stopped
    const opened = agentLogLines(second.output(), 'spool opened')[0];
    expect(Number(opened?.samples)).toBeGreaterThan(10); // the killed agent's backlog survived
    await sleep(8_000);
    await restartServer();

    await waitFor(
      'the backlog replayed',
      async () => {
        const r = await fetch(`${server.url}/api/v1/fleet`);
        return r.ok && (await hostTimes(influx, node)).length >= Number(starting.firstSeq);
      },
      60_000,
      500,
    );
    await sleep(2_000);
    expect(await second.stop(10_000)).toBe(0);
    const { nextSeq, unsent } = stoppedLine(second);
    expect(unsent).toBe(0);
    const times = await waitFor(
      'every sample in InfluxDB',
      async () => {
        const t = await hostTimes(influx, node);
        return t.length >= nextSeq ? t : undefined;
      },
      20_000,
      250,
    );
    expect(times.length).toBe(nextSeq);
    expect(new Set(times).size).toBe(times.length);
  }, 180_000);

  it('--check against the real server: token accepted → exit 0; a wrong token → exit 1 with the reason', async () => {
    const check = (token: string) =>
      new Promise<{ code: number; stdout: string }>((resolve) => {
        execFile(
          process.execPath,
          [
            agentBin,
            '--check',
            '--server',
            server.url,
            '--token',
            token,
            '--nvidia-smi',
            fakeNvidiaSmi,
            '--kmsg',
            'off',
          ],
          { timeout: 30_000 },
          (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
    const good = await check('test-token-1');
    expect(good.stdout).toMatch(/^ok {4}server: .* reachable, token accepted$/m);
    expect(good.code).toBe(0);
    const bad = await check('wrong-token');
    expect(bad.stdout).toMatch(/^FAIL {2}server: .*UNAUTHORIZED/m);
    expect(bad.code).toBe(1);
  });
});
