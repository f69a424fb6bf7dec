import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Ack,
  AGENT_NAMESPACE,
  type AgentToServerEvents,
  type ConnectErrorData,
  DASHBOARD_NAMESPACE,
  type DashboardToServerEvents,
  type GpuMetrics,
  PROTOCOL_VERSION,
  type Sample,
  type SamplesAckData,
  type ServerToAgentEvents,
  type ServerToDashboardEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';
import { afterEach } from 'vitest';
import { type CreateServerOptions, createServer, type GpupulseServer } from '../src/app.ts';
import { type EncodedPoint, jsonEncoding, type MetricPoint } from '../src/storage/metric-store.ts';

export type AgentClient = Socket<ServerToAgentEvents, AgentToServerEvents>;
export type DashboardClient = Socket<ServerToDashboardEvents, DashboardToServerEvents>;

export const TOKEN = 'test-token';

/**
 * Base of the tests' `MetricStore` doubles: they take points as they are (encoded as their JSON,
 * as the in-memory store does), so a double implements `write` alone.
 */
export abstract class PointStoreDouble {
  abstract write(points: readonly MetricPoint[]): Promise<void>;
  encode(point: MetricPoint): EncodedPoint {
    return jsonEncoding.encode(point);
  }
  writeEncoded(points: readonly EncodedPoint[]): Promise<void> {
    return this.write(points.map(jsonEncoding.decode));
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Runs `fn` after the current test. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export async function tempDir(prefix = 'gpupulse-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A real server on port 0 with the in-memory store, closed after the test. */
export async function startServer(opts: CreateServerOptions = {}): Promise<GpupulseServer> {
  const server = await createServer({
    ...opts,
    config: { port: 0, host: '127.0.0.1', agentTokens: [TOKEN], ...opts.config },
  });
  onCleanup(() => server.close());
  return server;
}

/** Connects an agent; resolves once connected (rejects with the connect error). */
export async function connectAgent(
  server: GpupulseServer,
  auth: Record<string, unknown> = {},
): Promise<AgentClient> {
  const socket: AgentClient = io(server.url + AGENT_NAMESPACE, {
    auth: { token: TOKEN, node: 'node-a', protocolVersion: PROTOCOL_VERSION, intervalMs: 1000, ...auth },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  onCleanup(() => {
    socket.disconnect();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  return socket;
}

/** Sends a `samples:report` (anything, also what the types forbid) and resolves with the ack. */
export const report = (agent: AgentClient, payload: unknown): Promise<Ack<SamplesAckData>> =>
  // biome-ignore lint/suspicious/noExplicitAny: deliberately sending what the types forbid
  agent.timeout(5000).emitWithAck('samples:report', payload as any);

/** The connect error an agent gets with this auth. */
export async function refusal(
  server: GpupulseServer,
  auth: Record<string, unknown>,
): Promise<Error & { data?: ConnectErrorData }> {
  try {
    await connectAgent(server, auth);
  } catch (err) {
    return err as Error & { data?: ConnectErrorData };
  }
  throw new Error('expected the connection to be refused');
}

export async function connectDashboard(
  server: GpupulseServer,
): Promise<{ socket: DashboardClient; snapshot: Parameters<ServerToDashboardEvents['fleet:snapshot']>[0] }> {
  const socket: DashboardClient = io(server.url + DASHBOARD_NAMESPACE, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  onCleanup(() => {
    socket.disconnect();
  });
  const snapshot = await new Promise<Parameters<ServerToDashboardEvents['fleet:snapshot']>[0]>(
    (resolve, reject) => {
      socket.once('fleet:snapshot', resolve);
      socket.once('connect_error', reject);
    },
  );
  return { socket, snapshot };
}

export function gpu(index: number, over: Partial<GpuMetrics> = {}): GpuMetrics {
  return {
    index,
    uuid: `GPU-0000000${index}-aaaa-bbbb-cccc-dddddddddddd`,
    name: 'NVIDIA H100 80GB HBM3',
    state: 'ok',
    utilizationGpuPercent: 42,
    utilizationMemoryPercent: 17,
    memoryUsedMiB: 20480,
    memoryTotalMiB: 81559,
    temperatureCelsius: 51,
    powerDrawWatts: 312.5,
    powerLimitWatts: 700,
    fanSpeedPercent: null,
    pstate: 'P0',
    clocksSmMHz: 1980,
    clocksMemoryMHz: 2619,
    ...over,
  };
}

export function sample(seq: number, ts: number, over: Partial<Sample> = {}): Sample {
  return {
    seq,
    ts,
    gpuCollector: 'ok',
    gpus: [gpu(0), gpu(1)],
    host: {
      cpuPercent: 12.5,
      memoryUsedBytes: 34359738368,
      memoryTotalBytes: 1081627930624,
      load1: 1.5,
      load5: 1.2,
      load15: 1,
      netRxBytesPerSec: 1024,
      netTxBytesPerSec: 2048,
      uptimeSeconds: 86400,
    },
    ...over,
  };
}

/** Polls until `fn` returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 3000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
