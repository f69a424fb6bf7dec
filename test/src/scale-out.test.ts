// Scale-out: two gpupulse-server processes over one real redis-server and one real influxd, four
// real agents (gpupulse-agent + fake nvidia-smi, disk spools) split across them with
// `--server A,B` / `--server B,A`, a Socket.IO dashboard on each process. Both dashboards see the
// whole fleet; the process holding the singleton lease is SIGKILLed: its agents move to the
// survivor within 15 s, both dashboards keep the whole fleet (the one on the dead process
// reconnects to the survivor), every sample an agent produced is stored in InfluxDB once per
// series, and each alert change is notified exactly once (a webhook receiver counts them).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Alert,
  applyNodePatch,
  DASHBOARD_NAMESPACE,
  type FleetDelta,
  type FleetSnapshot,
  type NodeView,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentLogLines } from './support/agent-support.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { type Proc, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { startRedis, type TestRedis } from './support/redis.ts';
import { sleep, waitFor } from './support/wait.ts';

const INTERVAL_MS = 1000;
const NODES = ['so-a1', 'so-a2', 'so-b1', 'so-b2'];

/** A dashboard that follows the fleet and, when its server goes away, reconnects to the next URL. */
function followingDashboard(urls: string[]) {
  const d = {
    nodes: new Map<string, NodeView>(),
    url: urls[0]!,
    snapshots: 0,
    socket: null as Socket | null,
    close: () => d.socket?.close(),
  };
  const open = (i: number) => {
    d.url = urls[i % urls.length]!;
    const s = io(`${d.url}${DASHBOARD_NAMESPACE}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    d.socket = s;
    s.on('fleet:snapshot', (snap: FleetSnapshot) => {
      d.snapshots++;
      d.nodes = new Map(snap.nodes.map((n) => [n.node, n]));
    });
    s.on('fleet:delta', (delta: FleetDelta) => {
      for (const n of delta.nodes) d.nodes.set(n.node, n);
      for (const p of delta.patches ?? []) {
        const prev = d.nodes.get(p.node);
        if (prev) d.nodes.set(p.node, applyNodePatch(prev, p));
      }
      for (const r of delta.removed) d.nodes.delete(r);
    });
    const next = () => setTimeout(() => open(i + 1), 200);
    s.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') next();
    });
    s.on('connect_error', next);
  };
  open(0);
  return d;
}

const online = (d: { nodes: Map<string, NodeView> }, since: number) =>
  NODES.every((n) => {
    const v = d.nodes.get(n);
    return v?.status === 'online' && (v.lastSampleTs ?? 0) > since;
  });

async function health(url: string): Promise<{ agents: number; nodes: number } | null> {
  try {
    return (await (await fetch(`${url}/api/v1/health`)).json()) as { agents: number; nodes: number };
  } catch {
    return null;
  }
}

async function leaseHeld(url: string): Promise<boolean> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return /^gpupulse_cluster_lease_held 1$/m.test(text);
}

describe('scale-out: two processes, redis-server, influxd, agents split across both', () => {
  let influx: TestInfluxd;
  let redis: TestRedis;
  const dirs: string[] = [];
  const notifications: Alert[] = [];
  let hookUrl = '';
  const rx = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const b = JSON.parse(body) as { alerts: Alert[] };
      notifications.push(...b.alerts);
      res.writeHead(204).end();
    });
  });

  beforeAll(async () => {
    [influx, redis] = await Promise.all([startInfluxd(), startRedis()]);
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await stopAll();
    await Promise.all([influx?.stop(), redis?.stop()]);
    await new Promise<void>((r) => rx.close(() => r()));
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('whole fleet on both dashboards; SIGKILL of the lease holder: agents move within 15 s, no sample lost, alerts once', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'gpupulse-scale-'));
    dirs.push(tmp);
    // Every GPU of every node is "hot" (threshold 1 °C): one alert per GPU, each notified once.
    const alertsFile = join(tmp, 'alerts.yaml');
    await writeFile(
      alertsFile,
      [
        'rules:',
        '  - id: gpu_temperature_high',
        '    threshold: 1',
        '    for: 0',
        'webhooks:',
        `  - url: ${hookUrl}`,
        '    format: json',
        '    ratePerMinute: 6000',
        '',
      ].join('\n'),
    );
    const env = {
      GPUPULSE_INFLUX_URL: influx.url,
      GPUPULSE_REDIS_URL: redis.url,
      GPUPULSE_ALERTS: alertsFile,
    };
    const servers: ServerProc[] = await Promise.all([startServer(env), startServer(env)]);
    const [a, b] = servers as [ServerProc, ServerProc];
    const agents: Proc[] = [];
    for (const [i, node] of NODES.entries()) {
      const spool = join(tmp, `spool-${node}`);
      const order = i < 2 ? `${a.url},${b.url}` : `${b.url},${a.url}`;
      agents.push(
        startAgent({
          server: order,
          node,
          intervalMs: INTERVAL_MS,
          extraArgs: ['--spool-dir', spool, '--kmsg', 'off'],
        }),
      );
    }
    const dashA = followingDashboard([a.url, b.url]);
    const dashB = followingDashboard([b.url, a.url]);
    const t0 = Date.now();
    await waitFor(
      'both dashboards see the whole fleet online',
      () => online(dashA, t0) && online(dashB, t0),
      45_000,
      100,
    ).catch((err: Error) => {
      const st = (d: typeof dashA) =>
        [...d.nodes.values()].map((n) => `${n.node}:${n.status}:${n.lastSampleTs}`).join(' ');
      throw new Error(
        `${err.message}\nA ${dashA.url}: ${st(dashA)}\nB ${dashB.url}: ${st(dashB)}\n${a.output().slice(-1500)}`,
      );
    });
    const gpusOf = new Map(NODES.map((n) => [n, dashA.nodes.get(n)!.gpus.length]));
    expect(Math.min(...gpusOf.values())).toBeGreaterThan(0);
    expect((await health(a.url))?.agents).toBe(2);
    expect((await health(b.url))?.agents).toBe(2);
    const firstFiring = await waitFor(
      'the temperature alerts notified',
      () => {
        const n = notifications.filter((x) => x.rule === 'gpu_temperature_high' && x.state === 'firing');
        return n.length > 0 && new Set(n.map((x) => x.node)).size === NODES.length ? n.length : undefined;
      },
      20_000,
      100,
    );

    // SIGKILL the lease holder.
    const holder = (await leaseHeld(a.url)) ? a : b;
    const survivor = holder === a ? b : a;
    expect(await leaseHeld(survivor.url)).toBe(false);
    holder.child.kill('SIGKILL');
    await holder.exited;
    const killedAt = Date.now();
    const moved = await waitFor(
      "the dead process's agents on the survivor",
      async () => ((await health(survivor.url))?.agents === NODES.length ? Date.now() - killedAt : undefined),
      15_000,
      100,
    );
    const takeover = await waitFor(
      'the survivor holds the lease',
      async () => ((await leaseHeld(survivor.url)) ? Date.now() - killedAt : undefined),
      10_000,
      100,
    );
    const afterMove = Date.now();
    await waitFor(
      'both dashboards (one reconnected) see the whole fleet online again',
      () => online(dashA, afterMove) && online(dashB, afterMove),
      15_000,
      100,
    );
    expect(dashA.url).toBe(survivor.url);
    expect(dashB.url).toBe(survivor.url);
    expect(dashA.nodes.size).toBe(NODES.length);
    expect(dashB.nodes.size).toBe(NODES.length);

    // Let alerts settle, then stop the agents cleanly: every sample they made must be stored.
    await sleep(4000);
    const produced: Record<string, { firstSeq: number; nextSeq: number; unsent: number }> = {};
    for (const [i, ag] of agents.entries()) {
      expect(await ag.stop(10_000)).toBe(0);
      const line = agentLogLines(ag.output(), 'stopped').at(-1);
      if (!line) throw new Error(`agent did not log "stopped":\n${ag.output().slice(-2000)}`);
      produced[NODES[i]!] = line as unknown as { firstSeq: number; nextSeq: number; unsent: number };
    }
    const stored: Record<string, unknown> = {};
    const clusterLog = survivor
      .output()
      .split('\n')
      .filter((l) => l.includes('"component":"cluster"'))
      .map((l) => l.slice(0, 300));
    for (const node of NODES) {
      const p = produced[node]!;
      const want = p.nextSeq - p.firstSeq;
      expect(p.unsent, `${node} left samples unsent`).toBe(0);
      const count = async () => {
        const host = await influx.query(
          `SELECT COUNT("uptime_seconds") FROM "gpupulse_host" WHERE "host" = '${node}'`,
        );
        const gpus = await influx.query(
          `SELECT COUNT("state") FROM "nvidia_smi" WHERE "host" = '${node}' GROUP BY "uuid"`,
        );
        return {
          host: Number(host[0]?.values[0]?.[1] ?? 0),
          gpus: gpus.map((s) => Number(s.values[0]?.[1] ?? 0)),
        };
      };
      const c = await waitFor(
        `every sample of ${node} stored`,
        async () => {
          const x = await count();
          return x.host >= want && x.gpus.length > 0 && x.gpus.every((g) => g >= want) ? x : undefined;
        },
        15_000,
        500,
      ).catch(count);
      const times =
        (
          await influx.query(`SELECT "uptime_seconds" FROM "gpupulse_host" WHERE "host" = '${node}'`)
        )[0]?.values.map((v) => Number(v[0])) ?? [];
      const gaps = times
        .slice(1)
        .flatMap((t, k) =>
          t - times[k]! > INTERVAL_MS * 1.5 ? [`${times[k]! - killedAt}..${t - killedAt}`] : [],
        );
      stored[node] = { produced: want, host: c.host, perGpu: [...new Set(c.gpus)], gapsMsFromKill: gaps };
      expect(
        c.host,
        `${node}: host points vs samples produced; gaps (ms from the kill) ${gaps.join(', ')}\n${clusterLog.join('\n')}`,
      ).toBe(want);
      expect(c.gpus.length).toBe(gpusOf.get(node));
      for (const g of c.gpus) expect(g, `${node}: GPU points vs samples produced`).toBe(want);
    }

    // Each alert change notified exactly once (rule + node + GPU + state).
    const byKey = new Map<string, number>();
    for (const n of notifications) {
      const k = `${n.rule}|${n.node}|${n.gpuUuid ?? ''}|${n.state}`;
      byKey.set(k, (byKey.get(k) ?? 0) + 1);
    }
    const dupes = [...byKey].filter(([, c]) => c !== 1);
    const hot = [...byKey.keys()].filter(
      (k) => k.startsWith('gpu_temperature_high|') && k.endsWith('|firing'),
    );
    expect(dupes).toEqual([]);
    expect(hot).toHaveLength([...gpusOf.values()].reduce((x, y) => x + y, 0));
    console.info(
      `scale-out: ${JSON.stringify({
        agentsMovedMs: moved,
        leaseTakeoverMs: takeover,
        firingNotifiedBeforeKill: firstFiring,
        notifications: notifications.length,
        distinctAlertChanges: byKey.size,
        otherChanges: [...byKey.keys()].filter((k) => !k.startsWith('gpu_temperature_high|')),
        stored,
      })}`,
    );
    dashA.close();
    dashB.close();
  }, 120_000);
});
