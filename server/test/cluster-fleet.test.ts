import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FleetDelta, FleetSnapshot } from '@gpupulse/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAlertsConfig, parseWebhookList } from '../src/alerts/config.ts';
import type { GpupulseServer } from '../src/app.ts';
import { startRedis, type TestRedis } from './cluster-redis.ts';
import { connectAgent, connectDashboard, gpu, onCleanup, sample, startServer, waitFor } from './helpers.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Names of the nodes a dashboard knows (snapshot, then deltas), with their latest sample time. */
function track(
  snapshot: FleetSnapshot,
  socket: { on(ev: 'fleet:delta', fn: (d: FleetDelta) => void): void },
) {
  const seen = new Map<string, number | null>(snapshot.nodes.map((n) => [n.node, n.lastSampleTs]));
  socket.on('fleet:delta', (d) => {
    for (const n of d.nodes) seen.set(n.node, n.lastSampleTs);
    for (const p of d.patches ?? []) if (p.lastSampleTs !== undefined) seen.set(p.node, p.lastSampleTs);
    for (const r of d.removed) seen.delete(r);
  });
  return seen;
}

describe('two server processes over one redis-server', () => {
  it('each dashboard sees every node live; alerts notified once; the lease moves when its holder goes', async () => {
    const hooks: Array<{ text: string }> = [];
    const rx = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        hooks.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => rx.close(() => r())));
    const hookUrl = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/hook`;
    const alerts = buildAlertsConfig({}, { webhooks: parseWebhookList(`slack+${hookUrl}`) });

    const start = () => startServer({ alerts, config: { redisUrl: redis.url } });
    const a: GpupulseServer = await start();
    const b: GpupulseServer = await start();
    expect(a.cluster).not.toBeNull();
    // Exactly one holds the singleton lease.
    await waitFor(() => a.lease.held() !== b.lease.held(), 3000, 'one lease holder');

    const dashA = await connectDashboard(a);
    const dashB = await connectDashboard(b);
    const seenA = track(dashA.snapshot, dashA.socket);
    const seenB = track(dashB.snapshot, dashB.socket);
    const alertsOnB: string[] = [];
    dashB.socket.on('alerts:changed', (l) => {
      for (const x of l.alerts) alertsOnB.push(`${x.rule}:${x.state}`);
    });

    const agentA = await connectAgent(a, { node: 'node-on-a' });
    const agentB = await connectAgent(b, { node: 'node-on-b' });
    const now = Date.now();
    // A driver error on A's node: an alert that only the lease holder may notify.
    const xid = sample(1, now, {
      gpuEvents: [{ kind: 'xid', gpuUuid: gpu(1).uuid, code: 48, message: 'DBE', ts: now }],
    });
    expect((await agentA.emitWithAck('samples:report', { samples: [xid] })).ok).toBe(true);
    expect((await agentB.emitWithAck('samples:report', { samples: [sample(1, now)] })).ok).toBe(true);

    // Both processes hold both nodes; both dashboards got both, with the sample.
    await waitFor(() => a.fleet.view('node-on-b')?.lastSampleTs === now, 3000, 'A replicates B');
    await waitFor(() => b.fleet.view('node-on-a')?.lastSampleTs === now, 3000, 'B replicates A');
    await waitFor(
      () => seenA.get('node-on-b') === now && seenA.get('node-on-a') === now,
      3000,
      'dashboard A',
    );
    await waitFor(
      () => seenB.get('node-on-b') === now && seenB.get('node-on-a') === now,
      3000,
      'dashboard B',
    );
    const fleetB = (await (await fetch(`${b.url}/api/v1/fleet`)).json()) as { nodes: { node: string }[] };
    expect(fleetB.nodes.map((n) => n.node)).toEqual(['node-on-a', 'node-on-b']);

    // The XID alert: evaluated on both, notified once, pushed to B's dashboard whoever holds the lease.
    await waitFor(() => hooks.length >= 1, 5000, 'the webhook');
    await waitFor(() => alertsOnB.includes('xid_error:firing'), 3000, 'alerts:changed on B');
    // Each process evaluates the replicated event at its own tick (every second): the holder's
    // push can reach B's dashboard before B's own evaluation, so wait up to two ticks for both.
    const firing = (s: GpupulseServer) => s.alerts.list({ state: 'firing' }).alerts.length > 0;
    await waitFor(() => firing(a) && firing(b), 2000, 'the XID alert evaluated on both processes');
    expect(a.alerts.list({ state: 'firing' }).alerts.map((x) => x.rule)).toEqual(['xid_error']);
    expect(b.alerts.list({ state: 'firing' }).alerts.map((x) => x.rule)).toEqual(['xid_error']);
    await new Promise((r) => setTimeout(r, 2500));
    expect(hooks.map((h) => h.text.split('\n')[0])).toHaveLength(1);

    // An acknowledgement on the standby, with the holder's alert id (what its dashboards got),
    // reaches the holder's alert state.
    const [h0, s0] = a.lease.held() ? [a, b] : [b, a];
    const holderId = h0.alerts.list({ state: 'firing' }).alerts[0]!.id;
    expect(s0.alerts.acknowledge(holderId, 'ops', 3_600_000)?.acknowledged?.by).toBe('ops');
    await waitFor(
      () => h0.alerts.list({ state: 'firing' }).alerts[0]?.acknowledged?.by === 'ops',
      3000,
      'the acknowledgement on the holder',
    );

    // The holder goes away (closing hands the lease back): the other takes over. Its node goes
    // offline on the survivor (its agent does not come back here): that alert is notified once,
    // the firing XID alert is not notified again.
    const [holder, other] = a.lease.held() ? [a, b] : [b, a];
    const gone = holder === a ? 'node-on-a' : 'node-on-b';
    await holder.close();
    await waitFor(() => other.lease.held(), 4000, 'takeover');
    await waitFor(
      () => other.fleet.view(gone)?.status === 'offline',
      7000,
      'the node of the gone process offline',
    );
    await waitFor(() => hooks.length >= 2, 5000, 'the node_offline notification');
    await new Promise((r) => setTimeout(r, 2500));
    const titles = hooks.map((h) => h.text.replace(/:.*?\] /, '').split(':')[0]).sort();
    expect(titles).toEqual([`node_offline firing on ${gone}`, 'xid_error firing on node-on-a']);
  }, 30_000);

  it('without GPUPULSE_REDIS_URL no Redis code path is taken', async () => {
    const s = await startServer();
    expect(s.cluster).toBeNull();
    expect(s.lease.held()).toBe(true);
    expect(s.fleet.constructor.name).toBe('FleetState');
  });
});
