import { type FleetDelta, fail, PROTOCOL_VERSION } from '@gpupulse/protocol';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { MemoryStore } from '../src/storage/memory-store.ts';
import {
  connectAgent,
  connectDashboard,
  gpu,
  refusal,
  report,
  sample,
  startServer,
  waitFor,
} from './helpers.ts';

describe('/agent auth', () => {
  it('refuses a wrong token with UNAUTHORIZED', async () => {
    const server = await startServer();
    const err = await refusal(server, { token: 'nope' });
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/invalid agent token/);
  });

  it('refuses a missing token with UNAUTHORIZED', async () => {
    const server = await startServer();
    const err = await refusal(server, { token: undefined });
    expect(err.data).toEqual({ code: 'UNAUTHORIZED', message: expect.stringMatching(/missing agent token/) });
  });

  it('refuses every agent when no tokens are configured, saying how to fix it', async () => {
    const server = await startServer({ config: { agentTokens: [] } });
    const err = await refusal(server, {});
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/GPUPULSE_AGENT_TOKENS/);
  });

  it('refuses another protocol version with PROTOCOL_VERSION naming both', async () => {
    const server = await startServer();
    const err = await refusal(server, { protocolVersion: PROTOCOL_VERSION + 1 });
    expect(err.data?.code).toBe('PROTOCOL_VERSION');
    expect(err.message).toContain(String(PROTOCOL_VERSION + 1));
    expect(err.message).toContain(String(PROTOCOL_VERSION));
  });

  it('refuses an invalid handshake with VALIDATION', async () => {
    const server = await startServer();
    const err = await refusal(server, { node: 'bad\nname' });
    expect(err.data?.code).toBe('VALIDATION');
  });

  it('counts refusals in /metrics', async () => {
    const server = await startServer();
    await refusal(server, { token: 'nope' });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gpupulse_agent_connections_refused_total\{code="UNAUTHORIZED"\} 1/);
  });

  it('a second connection of the same node replaces the first', async () => {
    const server = await startServer();
    const first = await connectAgent(server);
    const notices: string[] = [];
    first.on('server:notice', (n) => notices.push(n.code));
    const gone = new Promise<string>((r) => first.once('disconnect', r));
    const second = await connectAgent(server);
    expect(await gone).toBe('io server disconnect');
    expect(notices).toContain('REPLACED');
    expect(second.connected).toBe(true);
    await waitFor(() => server.health().agents === 1, 2000, 'one agent');
    expect(server.fleet.view('node-a')?.connected).toBe(true);
  });
});

describe('samples:report', () => {
  it('acks a valid sample, updates the fleet API and stores points', async () => {
    const store = new MemoryStore();
    const server = await startServer({
      store,
      config: { writeBuffer: { batchSize: 5000, flushIntervalMs: 50, maxPoints: 100_000 } },
    });
    const agent = await connectAgent(server);
    const now = Date.now();
    const ack = await report(agent, { samples: [sample(7, now)] });
    expect(ack.ok).toBe(true);
    if (!ack.ok) return;
    expect(ack.data.acked).toEqual([7]);
    expect(Math.abs(ack.data.serverTime - Date.now())).toBeLessThan(5000);

    const fleet = (await (await fetch(`${server.url}/api/v1/fleet`)).json()) as {
      nodes: Array<{
        node: string;
        status: string;
        gpus: Array<{ utilizationGpuPercent: number; project: unknown }>;
      }>;
    };
    expect(fleet.nodes).toHaveLength(1);
    expect(fleet.nodes[0]).toMatchObject({ node: 'node-a', status: 'online' });
    expect(fleet.nodes[0]!.gpus[0]).toMatchObject({ utilizationGpuPercent: 42, project: null });

    await waitFor(
      () => store.readSeries({ measurement: 'nvidia_smi', field: 'utilization_gpu' }).length === 2,
      3000,
      'GPU points in the store',
    );
    const series = store.readSeries({ measurement: 'nvidia_smi', field: 'utilization_gpu' });
    expect(series).toHaveLength(2);
    expect(series[0]).toMatchObject({ ts: now, value: 42 });
    expect(series[0]!.tags).toMatchObject({ host: 'node-a', index: '0' });
  });

  it('answers VALIDATION to a malformed report and writes nothing', async () => {
    const store = new MemoryStore();
    const server = await startServer({
      store,
      config: { writeBuffer: { batchSize: 1, flushIntervalMs: 20, maxPoints: 1000 } },
    });
    const agent = await connectAgent(server);
    const bad = sample(1, Date.now()) as unknown as Record<string, unknown>;
    bad.gpus = [{ index: -1, uuid: '' }];
    const ack = await report(agent, { samples: [bad] });
    expect(ack.ok).toBe(false);
    if (ack.ok) return;
    expect(ack.error.code).toBe('VALIDATION');
    expect(ack.error.message).toMatch(/samples\.0\.gpus\.0/);
    const ack2 = await report(agent, 'not even an object');
    expect(ack2).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    await new Promise((r) => setTimeout(r, 100));
    // nothing of the agent's (the server's own 10 s usage points may land meanwhile)
    const ofAgent = store
      .points()
      .filter((pt) => pt.tags.host === 'node-a' || pt.measurement === 'nvidia_smi');
    expect(ofAgent).toEqual([]);
    expect(server.fleet.view('node-a')?.lastSampleTs).toBeNull();
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gpupulse_rejected_payloads_total\{event="samples:report",reason="validation"\} 2/);
  });

  it('answers TOO_LARGE to a 5 MB report and keeps the connection', async () => {
    const server = await startServer();
    const agent = await connectAgent(server);
    let disconnected = false;
    agent.on('disconnect', () => {
      disconnected = true;
    });
    const big = sample(1, Date.now(), { gpuError: 'x'.repeat(4096) });
    // 5 MB: far more samples than fit, each valid on its own
    const samples = Array.from({ length: 600 }, (_, i) => ({
      ...big,
      seq: i,
      gpus: Array.from({ length: 2 }, (_, g) => ({ ...big.gpus[g % 2]!, error: 'y'.repeat(4096) })),
    }));
    const payload = { samples };
    expect(JSON.stringify(payload).length).toBeGreaterThan(5_000_000);
    const ack = await report(agent, payload);
    expect(ack).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    if (!ack.ok) expect(ack.error.message).toMatch(/limit is 4194304/);
    expect(disconnected).toBe(false);
    expect(agent.connected).toBe(true);
    const after = await report(agent, { samples: [sample(2, Date.now())] });
    expect(after).toMatchObject({ ok: true, data: { acked: [2] } });
    expect(server.fleet.view('node-a')?.lastSampleTs).not.toBeNull();
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gpupulse_rejected_payloads_total\{event="samples:report",reason="too_large"\} 1/);
  });

  it('ignores older (replayed) samples for live state but acks and stores them', async () => {
    const store = new MemoryStore();
    const server = await startServer({
      store,
      config: { writeBuffer: { batchSize: 5000, flushIntervalMs: 20, maxPoints: 10_000 } },
    });
    const agent = await connectAgent(server);
    const now = Date.now();
    await report(agent, { samples: [sample(10, now)] });
    const old = sample(3, now - 60_000, { gpus: [{ ...sample(0, 0).gpus[0]!, utilizationGpuPercent: 99 }] });
    const ack = await report(agent, { samples: [old], replay: true });
    expect(ack).toMatchObject({ ok: true, data: { acked: [3] } });
    expect(server.fleet.view('node-a')?.lastSampleTs).toBe(now);
    expect(server.fleet.view('node-a')?.gpus[0]?.utilizationGpuPercent).toBe(42);
    await waitFor(
      () =>
        store.readSeries({ measurement: 'nvidia_smi', field: 'utilization_gpu' }).some((v) => v.value === 99),
      3000,
      'replayed point stored',
    );
  });

  it('marks GPUs with processes as unassigned', async () => {
    const server = await startServer();
    const agent = await connectAgent(server);
    const s = sample(1, Date.now());
    s.processes = [{ gpuUuid: s.gpus[1]!.uuid, pid: 1234, usedMemoryMiB: 1000, name: 'python', user: 'kim' }];
    await report(agent, { samples: [s] });
    const view = server.fleet.view('node-a')!;
    expect(view.gpus.map((g) => g.project)).toEqual([null, 'unassigned']);
  });

  it('applies process deltas to the list in effect for live state and stored process points', async () => {
    const store = new MemoryStore();
    const server = await startServer({
      store,
      config: { writeBuffer: { batchSize: 5000, flushIntervalMs: 50, maxPoints: 100_000 } },
    });
    const agent = await connectAgent(server);
    const t0 = Date.now();
    const full = sample(1, t0, { processesMode: 'full' });
    const uuid1 = full.gpus[1]!.uuid;
    full.processes = [
      { gpuUuid: uuid1, pid: 10, usedMemoryMiB: 1000, name: 'a', user: 'kim' },
      { gpuUuid: uuid1, pid: 11, usedMemoryMiB: 1000, name: 'b', user: 'lee' },
    ];
    await report(agent, { samples: [full] });
    // a delta: pid 10 gone, pid 12 new; pid 11 unchanged and not repeated
    const delta = sample(2, t0 + 1000, {
      processesMode: 'delta',
      processes: [{ gpuUuid: uuid1, pid: 12, usedMemoryMiB: 500, name: 'c', user: 'park' }],
      processesGone: [{ gpuUuid: uuid1, pid: 10 }],
    });
    await report(agent, { samples: [delta] });
    const view = server.fleet.view('node-a')!;
    expect([...(view.gpus[1]?.users ?? [])].sort()).toEqual(['lee', 'park']);
    expect(view.gpus[1]?.processCount).toBe(2);
    await waitFor(
      () =>
        store.readSeries({ measurement: 'gpupulse_process', field: 'pid' }).some((p) => p.ts === t0 + 1000),
      3000,
      'process points of the delta sample',
    );
    const pids = store
      .readSeries({ measurement: 'gpupulse_process', field: 'pid' })
      .filter((p) => p.ts === t0 + 1000)
      .map((p) => p.value)
      .sort();
    expect(pids).toEqual([11, 12]);
  });

  it('sends one CLOCK_SKEW notice per connection', async () => {
    const server = await startServer();
    const agent = await connectAgent(server);
    const notices: string[] = [];
    agent.on('server:notice', (n) => notices.push(n.code));
    await report(agent, { samples: [sample(1, Date.now() + 60_000)] });
    await report(agent, { samples: [sample(2, Date.now() + 61_000)] });
    await waitFor(() => notices.length > 0, 2000, 'notice');
    await new Promise((r) => setTimeout(r, 100));
    expect(notices).toEqual(['CLOCK_SKEW']);
  });

  it('stores inventory and acks it', async () => {
    const server = await startServer();
    const agent = await connectAgent(server);
    const ack = await agent.timeout(5000).emitWithAck('inventory:report', {
      agentVersion: '0.1.0',
      hostname: 'node-a',
      os: 'Debian 12',
      kernel: '6.1',
      cpuModel: 'EPYC',
      cpuCores: 128,
      memoryTotalBytes: 1e12,
      gpus: [{ index: 0, uuid: 'GPU-1', name: 'H100', memoryTotalMiB: 81559 }],
    });
    expect(ack.ok).toBe(true);
    expect(server.fleet.inventoryOf('node-a')?.cpuModel).toBe('EPYC');
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid
    const bad = await agent.timeout(5000).emitWithAck('inventory:report', { hostname: 5 } as any);
    expect(bad).toMatchObject(fail('VALIDATION', expect.any(String)));
  });
});

describe('/dashboard', () => {
  it('gets a snapshot, then a delta with the new values', async () => {
    const server = await startServer({ config: { deltaIntervalMs: 100 } });
    const { socket, snapshot } = await connectDashboard(server);
    expect(snapshot.nodes).toEqual([]);
    expect(snapshot.storage.kind).toBe('memory');
    expect(snapshot.storage.warning).toMatch(/in-memory/);
    const deltas: FleetDelta[] = [];
    socket.on('fleet:delta', (d) => deltas.push(d));
    const agent = await connectAgent(server);
    await report(agent, { samples: [sample(1, Date.now())] });
    const delta = (await waitFor(
      () => deltas.find((d) => d.nodes.some((n) => n.lastSampleTs !== null)),
      3000,
      'delta with the sample',
    )) as FleetDelta;
    expect(delta.nodes[0]).toMatchObject({ node: 'node-a', status: 'online', connected: true });
    expect(delta.nodes[0]!.gpus[0]!.temperatureCelsius).toBe(51);
    // Heartbeat: deltas keep coming, empty when nothing changed.
    const n = deltas.length;
    await waitFor(() => deltas.length >= n + 2, 3000, 'heartbeat deltas');
    expect(deltas.at(-1)!.nodes).toEqual([]);
    const resync = await socket.timeout(5000).emitWithAck('fleet:resync');
    expect(resync.ok && resync.data.nodes.map((x: { node: string }) => x.node)).toEqual(['node-a']);
  });

  it('tracks stale and offline with a fake clock', async () => {
    const clock = new ManualClock(Date.now());
    const server = await startServer({ clock, config: { deltaIntervalMs: 60_000, sweepIntervalMs: 60_000 } });
    const { socket } = await connectDashboard(server);
    const deltas: FleetDelta[] = [];
    socket.on('fleet:delta', (d) => deltas.push(d));
    const agent = await connectAgent(server, { intervalMs: 1000 });
    await report(agent, { samples: [sample(1, clock.now())] });
    server.fleet.sweep();
    expect(server.fleet.view('node-a')?.status).toBe('online');
    server.tick();
    await waitFor(() => deltas.length === 1, 2000, 'first delta');

    clock.advance(3500);
    server.fleet.sweep();
    expect(server.fleet.view('node-a')?.status).toBe('stale');
    server.tick();
    await waitFor(() => deltas.length === 2, 2000, 'stale delta');
    // the node was sent in full before: now only what changed
    expect(deltas[1]!.nodes).toEqual([]);
    expect(deltas[1]!.patches).toEqual([{ node: 'node-a', status: 'stale' }]);

    clock.advance(30_000);
    server.fleet.sweep();
    expect(server.fleet.view('node-a')?.status).toBe('offline');
    expect(server.fleet.view('node-a')?.connected).toBe(true);

    await report(agent, { samples: [sample(2, clock.now())] });
    expect(server.fleet.view('node-a')?.status).toBe('online');

    agent.disconnect();
    await waitFor(() => server.fleet.view('node-a')?.status === 'offline', 2000, 'offline on disconnect');
    expect(server.fleet.view('node-a')?.connected).toBe(false);
  });
});

describe('samples:report integrity', () => {
  it('keeps the valid sample of a report and lists the invalid one (seq, index, code, message)', async () => {
    const store = new MemoryStore();
    const server = await startServer({
      store,
      config: { writeBuffer: { batchSize: 5000, flushIntervalMs: 20, maxPoints: 10_000 } },
    });
    const agent = await connectAgent(server);
    const now = Date.now();
    const good = sample(1, now);
    const bad = sample(2, now + 1, { gpus: [gpu(0, { utilizationGpuPercent: 87.5 }), gpu(1)] });
    const ack = await report(agent, { samples: [good, bad] });
    expect(ack.ok).toBe(true);
    if (!ack.ok) return;
    expect(ack.data.acked).toEqual([1]);
    expect(ack.data.rejected).toHaveLength(1);
    expect(ack.data.rejected![0]).toMatchObject({ seq: 2, index: 1, code: 'VALIDATION' });
    expect(ack.data.rejected![0]!.message).toMatch(/gpus\.0\.utilizationGpuPercent: .*integer/);
    await waitFor(
      () => store.readSeries({ measurement: 'nvidia_smi', field: 'utilization_gpu' }).length === 2,
      3000,
      'the valid sample stored',
    );
    await new Promise((r) => setTimeout(r, 60));
    const ts = store.readSeries({ measurement: 'nvidia_smi', field: 'utilization_gpu' }).map((p) => p.ts);
    expect(new Set(ts)).toEqual(new Set([now]));
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gpupulse_samples_rejected_total\{code="VALIDATION"\} 1/);
  });

  it('refuses samples outside the ts window (TOO_OLD, TOO_NEW); a report of only those is VALIDATION', async () => {
    const server = await startServer({ config: { sampleMaxAgeMs: 3600_000, sampleMaxAheadMs: 300_000 } });
    const agent = await connectAgent(server);
    const now = Date.now();
    const ack = await report(agent, {
      samples: [sample(1, now - 2 * 3600_000), sample(2, now), sample(3, now + 3600_000)],
    });
    expect(ack).toMatchObject({
      ok: true,
      data: {
        acked: [2],
        rejected: [
          { seq: 1, index: 0, code: 'TOO_OLD' },
          { seq: 3, index: 2, code: 'TOO_NEW' },
        ],
      },
    });
    const only = await report(agent, { samples: [sample(4, now + 10 * 365 * 86_400_000)] });
    expect(only).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    if (!only.ok) expect(only.error.message).toMatch(/^samples\.0: ts .* ahead of the server clock/);
    const seconds = await report(agent, { samples: [sample(5, Math.floor(now / 1000))] });
    expect(seconds).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    if (!seconds.ok) expect(seconds.error.message).toMatch(/samples\.0\.ts: .*seconds/);
  });

  it('a node that once sent a +10 years sample keeps updating and stays online', async () => {
    const clock = new ManualClock(Date.now());
    const server = await startServer({ clock });
    const agent = await connectAgent(server);
    const t0 = clock.now();
    await report(agent, { samples: [sample(1, t0 + 10 * 365 * 86_400_000)] });
    for (let i = 0; i < 40; i++) {
      clock.advance(1000);
      const ack = await report(agent, {
        samples: [sample(2 + i, clock.now(), { gpus: [gpu(0, { utilizationGpuPercent: i }), gpu(1)] })],
      });
      expect(ack.ok).toBe(true);
    }
    server.fleet.sweep();
    const view = server.fleet.view('node-a')!;
    expect(view.status).toBe('online');
    expect(view.lastSampleTs).toBe(clock.now());
    expect(view.gpus[0]?.utilizationGpuPercent).toBe(39);
    expect(server.alerts.engine.firingByRule().node_offline ?? 0).toBe(0);
  });

  it('counts a frame with a bare NaN, logs it once, answers VALIDATION and keeps the connection', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const server = await startServer({ logger });
    const agent = await connectAgent(server);
    const rawAck = (id: number, frame: string) =>
      new Promise<unknown>((resolve) => {
        (agent as unknown as { acks: Record<number, (...a: unknown[]) => void> }).acks[id] = (a) =>
          resolve(a);
        agent.io.engine.write(frame);
      });
    const ts = Date.now();
    const frame = (id: number) =>
      `2/agent,${id}["samples:report",{"samples":[{"seq":1,"ts":${ts},"x":NaN}]}]`;
    const first = await rawAck(9001, frame(9001));
    expect(first).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(JSON.stringify(first)).toMatch(/could not be decoded/);
    await rawAck(9002, frame(9002));
    expect(agent.connected).toBe(true);
    const after = await report(agent, { samples: [sample(3, Date.now())] });
    expect(after).toMatchObject({ ok: true, data: { acked: [3] } });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gpupulse_malformed_frames_total 2/);
    expect(lines.filter((l) => l.includes('malformed frame'))).toHaveLength(1);
  });

  it('refuses with UNAVAILABLE (and a retry hint) instead of dropping when the backlog is full', async () => {
    const store = new MemoryStore();
    const server = await startServer({
      store,
      config: { writeBuffer: { batchSize: 10, flushIntervalMs: 60_000, maxPoints: 10 } },
    });
    const agent = await connectAgent(server);
    const now = Date.now();
    // 3 points per sample: the buffer (80 % of 10 = 8 points) takes two samples, then refuses
    expect(await report(agent, { samples: [sample(1, now)] })).toMatchObject({ ok: true });
    expect(await report(agent, { samples: [sample(2, now + 1)] })).toMatchObject({ ok: true });
    const refused = await report(agent, { samples: [sample(3, now + 2)] });
    expect(refused).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    if (!refused.ok) expect(refused.error.retryAfterMs).toBeGreaterThan(0);
    // the live view still follows the refused sample
    expect(server.fleet.view('node-a')?.lastSampleTs).toBe(now + 2);
    expect(server.buffer.stats.pointsDroppedOverflow).toBe(0);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/gpupulse_samples_refused_total\{reason="backlog_full"\} 1/);
    await server.buffer.flush(1000);
    expect(store.readSeries({ measurement: 'nvidia_smi', field: 'utilization_gpu' })).toHaveLength(4);
  });
});
