// Fault: the agent's spool directory fills up while the server is away. As root (CI) the spool
// lives on a real 1 MiB tmpfs (`mount -t tmpfs -o size=1m`) with the agent's own bound set far
// above it, so the file system itself runs out of space (ENOSPC); elsewhere the agent's
// `--spool-max-bytes` bound (256 KiB) is what fills. Either way: the agent keeps running, drops
// the OLDEST samples and counts them, and after the server is back InfluxDB holds every sample
// that was not counted as dropped — the newest ones — exactly once.
// GPUPULSE_FAULT_SPOOL_NO_TMPFS=1 takes the size-bound path as root too.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentLogLines } from './support/agent-support.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { artifactsDir } from './support/paths.ts';
import { type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { sleep, waitFor } from './support/wait.ts';

const INTERVAL_MS = 200;
const DELIVERED_MESSAGE =
  'samples dropped for room while in flight were acknowledged: stored after all, not counted as dropped';
const DROP_MESSAGES = [
  'spool full: dropped the oldest samples',
  'spool full: dropped a sample (nothing older to free)',
  'spool record unreadable; dropped it',
];

/** A 1 MiB tmpfs when we may mount one (root), else null. */
function mountTinyTmpfs(dir: string): boolean {
  if (process.getuid?.() !== 0 || process.env.GPUPULSE_FAULT_SPOOL_NO_TMPFS === '1') return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch {
    return false; // root without CAP_SYS_ADMIN (some containers): the size bound instead
  }
}

async function hostTimes(influx: TestInfluxd, node: string): Promise<number[]> {
  const series = await influx.query(`SELECT "uptime_seconds" FROM "gpupulse_host" WHERE "host" = '${node}'`);
  return (series[0]?.values ?? []).map((v) => Number(v[0])).sort((a, b) => a - b);
}

describe('fault: the agent spool directory is full (real agent, real server, real influxd)', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let dir: string;
  let mounted = false;

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url });
    dir = await mkdtemp(join(tmpdir(), 'gpupulse-spool-full-'));
    mounted = mountTinyTmpfs(dir);
  });

  afterAll(async () => {
    await stopAll();
    await influx?.stop();
    if (mounted) execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
  });

  it('oldest samples dropped and counted, the agent keeps running, the rest stored exactly once', async () => {
    const node = 'spool-full';
    const bound = mounted ? '64MiB' : '256KiB';
    const agent = startAgent({
      server: server.url,
      node,
      intervalMs: INTERVAL_MS,
      extraArgs: ['--spool-dir', dir, '--spool-max-bytes', bound, '--kmsg', 'off'],
      // 8 GPUs with their processes: ~10 KB a sample, so the spool fills in seconds
      env: { FAKE_NVIDIA_SMI_GPUS: '8' },
    });
    await waitFor(
      'first points in InfluxDB',
      async () => (await hostTimes(influx, node)).length >= 3,
      30_000,
      250,
    );

    const port = server.port;
    await server.stop();
    const firstServerOutput = server.output();
    const outageStart = Date.now();
    await waitFor(
      'the spool full and the oldest samples dropped',
      () => agentLogLines(agent.output(), 'spool full: dropped the oldest samples').length >= 2,
      120_000,
      250,
    );
    await sleep(3000);
    expect(agent.child.exitCode, `agent died:\n${agent.output().slice(-3000)}`).toBeNull();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url }, { port });
    const outageEnd = Date.now();

    // The agent reconnects (with its one backoff: up to 30 s after the server is back) and replays
    // what its spool kept: the newest samples before it reconnected. Those may all be younger than
    // the server's restart when the backoff ran long (the spool holds ~20 s here), so "replayed"
    // is: samples after the outage's start, the newest live, and no gap left among them.
    await waitFor(
      'the kept samples replayed',
      async () => {
        const after = (await hostTimes(influx, node)).filter((x) => x > outageStart);
        if ((after.at(-1) ?? 0) < outageEnd + 2000) return false;
        for (let k = 1; k < after.length; k++) if (after[k]! - after[k - 1]! > 3 * INTERVAL_MS) return false;
        return true;
      },
      150_000,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- agent ---\n${agent.output().slice(-3000)}`);
    });
    await sleep(3000);
    expect(await agent.stop(10_000)).toBe(0);
    const stopped = agentLogLines(agent.output(), 'stopped').at(-1) as
      | { firstSeq: number; nextSeq: number; unsent: number; dropped: number }
      | undefined;
    if (!stopped) throw new Error(`agent did not log "stopped":\n${agent.output().slice(-3000)}`);
    // Every drop is logged with its count: the oldest samples for room (the normal case here), a
    // new sample when nothing older was left to free, an unreadable record.
    const dropLinesBy = new Map(DROP_MESSAGES.map((msg) => [msg, agentLogLines(agent.output(), msg)]));
    const dropLines = [...dropLinesBy.values()].flat();
    // ... less those the server acknowledged after all (dropped while their report was in flight)
    const deliveredLogged = agentLogLines(agent.output(), DELIVERED_MESSAGE).reduce(
      (n, l) => n + Number(l.delivered),
      0,
    );
    const droppedLogged = dropLines.reduce((n, l) => n + Number(l.dropped ?? 1), 0) - deliveredLogged;
    const produced = stopped.nextSeq - stopped.firstSeq;
    const times = await waitFor(
      'every kept sample stored',
      async () => {
        const t = await hostTimes(influx, node);
        return t.length >= produced - stopped.dropped ? t : undefined;
      },
      30_000,
      500,
    ).catch(() => hostTimes(influx, node));

    // The gaps in what is stored: only one, at the start of the outage (the oldest samples).
    const gaps: { from: number; to: number }[] = [];
    for (let k = 1; k < times.length; k++)
      if (times[k]! - times[k - 1]! > 3 * INTERVAL_MS) gaps.push({ from: times[k - 1]!, to: times[k]! });
    const report = {
      spool: mounted ? '1 MiB tmpfs (ENOSPC)' : `--spool-max-bytes ${bound}`,
      produced,
      dropped: stopped.dropped,
      droppedLogged,
      deliveredLogged,
      stored: times.length,
      unsent: stopped.unsent,
      dropLogs: Object.fromEntries([...dropLinesBy].map(([m, lines]) => [m, lines.length])),
      agentOutputBytes: agent.output().length,
      outageMs: outageEnd - outageStart,
      gaps: gaps.map((g) => ({ fromMsAfterOutageStart: g.from - outageStart, lengthMs: g.to - g.from })),
    };
    console.info(`faults-spool-full: ${JSON.stringify(report)}`);
    mkdirSync(artifactsDir, { recursive: true });
    writeFileSync(join(artifactsDir, 'faults-spool-full-agent.log'), agent.output());
    writeFileSync(
      join(artifactsDir, 'faults-spool-full-server.log'),
      `${firstServerOutput}\n---\n${server.output()}`,
    );
    expect(stopped.dropped).toBeGreaterThan(0);
    expect(
      droppedLogged,
      `drops logged vs counted; the agent's log lines about drops and refusals:\n${agent
        .output()
        .split('\n')
        .filter((l) => /drop|refus|reject|unreadable|delivered/i.test(l))
        .join('\n')}`,
    ).toBe(stopped.dropped);
    expect(stopped.unsent).toBe(0);
    expect(new Set(times).size).toBe(times.length);
    expect(times.length + stopped.dropped).toBe(produced); // every sample stored or counted, once
    expect(gaps).toHaveLength(1);
    // the dropped block starts where the outage started (the oldest unsent samples) ...
    expect(Math.abs(gaps[0]!.from - outageStart)).toBeLessThan(3000);
    // ... and everything from the gap's end to now is there
    expect(times.filter((t) => t > gaps[0]!.to).length).toBeGreaterThan(10);
  }, 300_000);
});
