import {
  type Ack,
  AGENT_NAMESPACE,
  type AgentToServerEvents,
  PROTOCOL_VERSION,
  type SamplesAckData,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rows, startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { AGENT_TOKEN, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { sleep, waitFor } from './support/wait.ts';

type AgentSocket = Socket<ServerToAgentEvents, AgentToServerEvents>;

function agentSocket(url: string, auth: Record<string, unknown>): AgentSocket {
  return io(`${url}${AGENT_NAMESPACE}`, { auth, transports: ['websocket'], reconnection: false });
}

/** Resolves with the refusal's `data` (code, message), or rejects if the connection is accepted. */
function refusal(socket: AgentSocket): Promise<{ code?: string; message?: string }> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('connection was accepted')));
    socket.once('connect_error', (err: Error & { data?: { code?: string; message?: string } }) =>
      resolve(err.data ?? { message: err.message }),
    );
  });
}

const goodSample = (seq: number) => ({
  seq,
  ts: Date.now(),
  gpuCollector: 'ok',
  gpus: [
    {
      index: 0,
      uuid: 'GPU-11111111-2222-3333-4444-555555555555',
      name: 'NVIDIA H100 80GB HBM3',
      utilizationGpuPercent: 42,
      utilizationMemoryPercent: 10,
      memoryUsedMiB: 1000,
      memoryTotalMiB: 81559,
      temperatureCelsius: 50,
      powerDrawWatts: 300.5,
      powerLimitWatts: 700,
      fanSpeedPercent: null,
      pstate: 'P0',
      clocksSmMHz: 1980,
      clocksMemoryMHz: 2619,
    },
  ],
  host: null,
});

describe('agent authentication and payload validation', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  const sockets: AgentSocket[] = [];
  const open = (auth: Record<string, unknown>) => {
    const s = agentSocket(server.url, auth);
    sockets.push(s);
    return s;
  };

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await stopAll();
    await influx?.stop();
  });

  it('refuses a wrong token with a clear reason', async () => {
    const r = await refusal(open({ token: 'nope', node: 'n1', protocolVersion: PROTOCOL_VERSION }));
    expect(r.code).toBe('UNAUTHORIZED');
    expect(r.message).toMatch(/token/i);
  });

  it('refuses a missing token', async () => {
    const r = await refusal(open({ node: 'n1', protocolVersion: PROTOCOL_VERSION }));
    expect(r.code).toBe('UNAUTHORIZED');
  });

  it('refuses another protocol version, naming both', async () => {
    const r = await refusal(open({ token: AGENT_TOKEN, node: 'n1', protocolVersion: PROTOCOL_VERSION + 1 }));
    expect(r.code).toBe('PROTOCOL_VERSION');
    expect(r.message).toContain(String(PROTOCOL_VERSION));
    expect(r.message).toContain(String(PROTOCOL_VERSION + 1));
  });

  it('a real agent with a wrong token says why, and the server counts and logs the refusal without the token', async () => {
    const refused = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(
        /gpupulse_agent_connections_refused_total\{code="UNAUTHORIZED"\} (\d+)/.exec(text)?.[1] ?? 0,
      );
    };
    const before = await refused();
    const agent = startAgent({ server: server.url, node: 'wrong-token-node', token: 'secret-but-wrong' });
    await waitFor('agent to report the refusal', () => /UNAUTHORIZED|token/i.test(agent.output()), 20_000);
    await waitFor('server to count the refusal', async () => (await refused()) > before, 10_000);
    // Refusals are logged once per minute per source address and kind (the tests above already
    // caused one from this address), never with the token.
    await waitFor(
      'server to log a refusal',
      () => /agent refused: invalid agent token/.test(server.output()),
      10_000,
    );
    expect(server.output()).not.toContain('secret-but-wrong');
    await agent.stop();
  });

  it('rejects a malformed sample with a VALIDATION ack and writes nothing', async () => {
    const s = open({ token: AGENT_TOKEN, node: 'malformed-node', protocolVersion: PROTOCOL_VERSION });
    await new Promise<void>((r) => s.once('connect', () => r()));
    const bad = { ...goodSample(1), gpus: [{ ...goodSample(1).gpus[0], temperatureCelsius: 'hot' }] };
    const ack = (await s
      .timeout(5000)
      // @ts-expect-error deliberately malformed payload
      .emitWithAck('samples:report', { samples: [bad] })) as Ack<SamplesAckData>;
    expect(ack.ok).toBe(false);
    if (!ack.ok) {
      expect(ack.error.code).toBe('VALIDATION');
      expect(ack.error.message).toMatch(/temperatureCelsius/);
    }
    // The connection survives and a good sample is still taken.
    const good = await s.timeout(5000).emitWithAck('samples:report', { samples: [goodSample(2) as never] });
    expect(good.ok).toBe(true);
    if (good.ok) expect(good.data.acked).toEqual([2]);
    const stored = await waitFor(
      'the good sample in InfluxDB',
      async () => {
        const r = rows(await influx.query(`SELECT * FROM "nvidia_smi" WHERE "host" = 'malformed-node'`));
        return r.length > 0 ? r : undefined;
      },
      15_000,
      300,
    );
    await sleep(1500); // give a wrongly written bad sample time to appear
    const all = rows(await influx.query(`SELECT * FROM "nvidia_smi" WHERE "host" = 'malformed-node'`));
    expect(all).toHaveLength(1);
    expect(stored[0]?.utilization_gpu).toBe(42);
  });

  it('survives a message over the transport limit (16 MiB): the sender is cut off, the server stays healthy', async () => {
    const s = open({ token: AGENT_TOKEN, node: 'big-node', protocolVersion: PROTOCOL_VERSION });
    await new Promise<void>((r) => s.once('connect', () => r()));
    const disconnected = new Promise<void>((r) => s.once('disconnect', () => r()));
    // (a report over the 4 MiB message limit but under the transport's 16 MiB gets a TOO_LARGE ack;
    // see backpressure.test.ts)
    const huge = { ...goodSample(1), gpuError: 'x'.repeat(17 * 1024 * 1024) };
    s.emit('samples:report', { samples: [huge as never] }, () => {});
    await disconnected;
    const health = await fetch(`${server.url}/api/v1/health`);
    expect(health.ok).toBe(true);
  });
});
