import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AlertsList, AlertsListSchema, DASHBOARD_NAMESPACE } from '@gpupulse/protocol';
import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { buildAlertsConfig, parseWebhookList } from '../src/alerts/config.ts';
import { ManualClock } from '../src/clock.ts';
import { MemoryStore } from '../src/storage/memory-store.ts';
import { connectAgent, connectDashboard, gpu, onCleanup, sample, startServer, waitFor } from './helpers.ts';

/** Parses Prometheus text into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('alerts in the server', () => {
  it('agent sample → alert firing → dashboards, API, storage, webhook, /metrics; then resolved', async () => {
    const hooks: unknown[] = [];
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

    const clock = new ManualClock(Date.now());
    const store = new MemoryStore({ now: () => clock.now() });
    const server = await startServer({
      clock,
      store,
      config: { writeBuffer: { batchSize: 100, flushIntervalMs: 20, maxPoints: 10_000 } },
      alerts: buildAlertsConfig({}, { webhooks: parseWebhookList(`slack+${hookUrl}`) }),
    });
    const dash = await connectDashboard(server);
    const changes: AlertsList[] = [];
    dash.socket.on('alerts:changed', (l) => changes.push(l));
    const agent = await connectAgent(server, { node: 'hot-node' });

    const hot = sample(1, clock.now(), {
      gpus: [gpu(0, { memoryTemperatureCelsius: 99 }), gpu(1)],
      gpuEvents: [
        { kind: 'xid', gpuUuid: gpu(1).uuid, code: 48, message: 'DBE (double bit error)', ts: clock.now() },
      ],
    });
    const ack = await agent.emitWithAck('samples:report', { samples: [hot] });
    expect(ack.ok).toBe(true);
    server.alerts.tick();

    await waitFor(() => changes.length > 0, 3000, 'alerts:changed');
    expect(
      AlertsListSchema.parse(changes[0])
        .alerts.map((a) => a.rule)
        .sort(),
    ).toEqual(['memory_temperature_high', 'xid_error']);

    // A dashboard connecting now gets the snapshot.
    const late = io(server.url + DASHBOARD_NAMESPACE, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    });
    onCleanup(() => {
      late.disconnect();
    });
    const snap = await new Promise<AlertsList>((resolve) => late.once('alerts:snapshot', resolve));
    expect(snap.alerts.filter((a) => a.state === 'firing')).toHaveLength(2);

    const api = async (q: string) => {
      const res = await fetch(`${server.url}/api/v1/alerts${q}`);
      return { status: res.status, body: (await res.json()) as AlertsList };
    };
    const firing = await api('?state=firing');
    expect(firing.status).toBe(200);
    expect(firing.body.alerts).toHaveLength(2);
    expect((await api('?rule=xid_error')).body.alerts[0]).toMatchObject({ gpuIndex: 1, value: 48 });
    expect((await api('?node=other')).body.alerts).toHaveLength(0);
    expect((await api('?state=bogus')).status).toBe(400);

    await waitFor(() => hooks.length === 2, 3000, 'two webhook messages');
    expect((hooks[0] as { text: string }).text).toMatch(/firing on hot-node/);

    // Written to storage as gpupulse_alert.
    await waitFor(() => store.points().some((p) => p.measurement === 'gpupulse_alert'), 3000, 'alert points');
    const point = store
      .points()
      .find((p) => p.measurement === 'gpupulse_alert' && p.tags.rule === 'xid_error')!;
    expect(point.tags).toMatchObject({
      rule: 'xid_error',
      severity: 'critical',
      host: 'hot-node',
      uuid: gpu(1).uuid,
    });
    expect(point.strings).toMatchObject({ state: 'firing' });
    expect(point.ints?.started_at).toBe(point.ts);

    const metrics = parseMetrics(await (await fetch(`${server.url}/metrics`)).text());
    expect(metrics.get('gpupulse_alerts_firing{rule="memory_temperature_high"}')).toBe(1);
    expect(metrics.get('gpupulse_alerts_firing{rule="node_offline"}')).toBe(0);
    expect(metrics.get('gpupulse_alert_transitions_total{rule="xid_error",state="firing"}')).toBe(1);
    expect(
      metrics.get(
        'gpupulse_webhook_messages_total{webhook="http://127.0.0.1:' +
          new URL(hookUrl).port +
          '",result="ok"}',
      ),
    ).toBe(2);

    // Cool down: resolved after the 30 s clear window; XID after its 10 min hold.
    const cool = sample(2, clock.now() + 1, { gpus: [gpu(0, { memoryTemperatureCelsius: 70 }), gpu(1)] });
    await agent.emitWithAck('samples:report', { samples: [cool] });
    server.alerts.tick();
    clock.advance(31_000);
    // keep the node online in the fleet's eyes
    await agent.emitWithAck('samples:report', {
      samples: [sample(3, clock.now(), { gpus: [gpu(0, { memoryTemperatureCelsius: 70 }), gpu(1)] })],
    });
    server.alerts.tick();
    clock.advance(1000);
    server.alerts.tick();
    await waitFor(
      () =>
        changes.some((c) =>
          c.alerts.some((a) => a.state === 'resolved' && a.rule === 'memory_temperature_high'),
        ),
      3000,
      'resolved',
    );
    const all = await api('?state=all');
    expect(all.body.alerts.map((a) => `${a.rule}:${a.state}`)).toEqual([
      'xid_error:firing',
      'memory_temperature_high:resolved',
    ]);
  });

  it('/metrics exposes the self-monitoring series', async () => {
    const server = await startServer();
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const m = parseMetrics(text);
    for (const name of [
      'gpupulse_agents_connected',
      'gpupulse_dashboards_connected',
      'gpupulse_samples_received_total',
      'gpupulse_spool_bytes',
      'gpupulse_spool_segments',
      'gpupulse_spool_points',
      'gpupulse_storage_points_spooled_total',
      'gpupulse_write_buffer_points',
      'nodejs_eventloop_lag_seconds',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(m.has(name), name).toBe(true);
    }
    for (const reason of ['overflow', 'rejected', 'shutdown', 'spool_full', 'spool_corrupt']) {
      expect(m.get(`gpupulse_storage_points_dropped_total{reason="${reason}"}`)).toBe(0);
    }
    expect(m.get('gpupulse_storage_write_batches_total{result="ok"}')).toBe(0);
    expect(text).toContain('# TYPE gpupulse_storage_write_duration_seconds histogram');
    expect(text).toContain('# TYPE gpupulse_webhook_messages_total counter');
    expect(text).toContain('# TYPE gpupulse_webhook_rate_limited_total counter');
    expect(m.get('gpupulse_alerts_firing{rule="gpu_temperature_high"}')).toBe(0);
    expect(server.spool).toBeNull(); // memory store: no spool
  });
});
