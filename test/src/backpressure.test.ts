/**
 * Backpressure instead of loss, end to end with real parts: simulated nodes sending through the
 * real agent transport (`SocketTransport` + its queue), the real server, and a real influxd that
 * is throttled by SIGSTOP/SIGCONT cycles. The write backlog goes to the server's disk spool,
 * the spool fills, the server answers UNAVAILABLE, the agents keep their samples — and when
 * storage catches up every acked sample is stored exactly once (counted per series with
 * InfluxQL), with the backpressure visible in /metrics.
 *
 * Also: a report over the message limit is answered TOO_LARGE on a connection that stays up; the
 * agent halves its batches and everything lands.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSilentLogger,
  createSimFleet,
  MemoryQueue,
  SocketTransport,
  type TransportOptions,
} from '@gpupulse/agent';
import { AGENT_NAMESPACE, LIMITS, type Sample } from '@gpupulse/protocol';
import {
  createServer,
  type GpupulseServer,
  InfluxStore,
  type ManagedInfluxd,
  MemoryStore,
  startManagedInfluxd,
} from '@gpupulse/server';
import { afterEach, describe, expect, it } from 'vitest';

const TOKEN = 'backpressure-token';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function transport(url: string, node: string, queue: MemoryQueue, extra: Partial<TransportOptions> = {}) {
  const t = new SocketTransport({
    url,
    token: TOKEN,
    node,
    intervalMs: 250,
    agentVersion: 'backpressure-test',
    logger: createSilentLogger(),
    queue,
    inventory: async () => ({
      agentVersion: 'backpressure-test',
      hostname: node,
      os: null,
      kernel: null,
      cpuModel: null,
      cpuCores: null,
      memoryTotalBytes: null,
      gpus: [],
    }),
    reconnectInitialMs: 100,
    reconnectMaxMs: 1000,
    ...extra,
  });
  cleanups.push(() => t.close());
  return t;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A Prometheus sample value from /metrics text (0 when absent). */
function metric(text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels}`.replace(/[{}"=.]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function influxql(influxd: ManagedInfluxd, db: string, q: string) {
  const u = new URL('/query', influxd.url);
  u.searchParams.set('db', db);
  u.searchParams.set('q', q);
  const res = await fetch(u, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as {
    results?: { series?: { tags?: Record<string, string>; values: unknown[][] }[]; error?: string }[];
  };
  if (!res.ok || body.results?.[0]?.error) throw new Error(`InfluxQL failed: ${JSON.stringify(body)}`);
  return body.results?.[0]?.series ?? [];
}

describe('backpressure (real influxd throttled with SIGSTOP/SIGCONT)', () => {
  it('spools, then refuses with UNAVAILABLE; agents keep their samples; afterwards acked = stored per series', async () => {
    const influxd = await startManagedInfluxd({ dataDir: await tempDir('gpupulse-bp-influxd-') });
    let stopped = false;
    const cont = () => {
      if (stopped) process.kill(influxd.pid, 'SIGCONT');
      stopped = false;
    };
    cleanups.push(async () => {
      cont();
      await influxd.stop();
    });
    const db = 'backpressure';
    const store = new InfluxStore({
      url: influxd.url,
      database: db,
      kind: 'managed-influxdb',
      timeoutMs: 800,
    });
    await store.init();
    const server: GpupulseServer = await createServer({
      store,
      config: {
        port: 0,
        host: '127.0.0.1',
        agentTokens: [TOKEN],
        dataDir: await tempDir('gpupulse-bp-data-'),
        retention: { policies: 'off', raw: 'INF', oneMinute: 'INF', oneHour: 'INF' },
        // small bounds so that a few seconds of a stopped influxd exhaust them
        writeBuffer: {
          batchSize: 500,
          flushIntervalMs: 100,
          maxPoints: 20_000,
          spillPoints: 1000,
          initialBackoffMs: 100,
          maxBackoffMs: 400,
        },
        spool: { enabled: true, maxBytes: 1024 * 1024 },
      },
    });
    cleanups.push(() => server.close());

    const NODES = 20;
    const GPUS = 8;
    const sim = createSimFleet({ nodes: NODES, gpusPerNode: GPUS, prefix: 'bp', intervalMs: 250, seed: 7 });
    const agents = sim.nodeNames.map((node) => {
      const queue = new MemoryQueue(100_000);
      const t = transport(server.url, node, queue, { replayBatchesPerSec: 20 });
      t.start();
      return { node, queue, t, produced: 0 };
    });
    await until(() => agents.every((a) => a.t.connected), 10_000, 'agents connected');

    // 4 samples per second per node while influxd is stopped and continued
    const sampler = setInterval(() => {
      const now = Date.now();
      agents.forEach((a, i) => {
        a.queue.push(structuredClone(sim.tick(i, now)) as Sample);
        a.produced++;
        a.t.notify();
      });
    }, 250);
    let cycles = 0;
    let maxBacklog = 0;
    let staleDuringStop: string[] | null = null;
    // short stops (the backlog spills to the spool and drains in between), then a long one (the
    // spool reaches its bound and the server refuses)
    for (const stopMs of [2000, 2000, 2000, 2000, 8000]) {
      process.kill(influxd.pid, 'SIGSTOP');
      stopped = true;
      await new Promise((r) => setTimeout(r, stopMs - 500));
      // the backlog as /metrics shows it while storage is stopped
      const m = await (await fetch(`${server.url}/metrics`)).text();
      maxBacklog = Math.max(
        maxBacklog,
        metric(m, 'gpupulse_spool_points') + metric(m, 'gpupulse_write_buffer_points'),
      );
      if (stopMs === 8000) {
        // deep in the long stop (refusals): the wall still shows every node's recent samples
        const now = Date.now();
        staleDuringStop = server.fleet
          .snapshot()
          .filter((n) => n.node.startsWith('bp-') && (n.lastSampleTs ?? 0) < now - 3000)
          .map((n) => n.node);
      }
      await new Promise((r) => setTimeout(r, 500));
      cont();
      cycles++;
      await new Promise((r) => setTimeout(r, 1000));
    }
    clearInterval(sampler);
    cont();

    // storage catches up: every agent's queue empties, the server's backlog and spool drain
    await until(
      () =>
        agents.every((a) => a.queue.size === 0) &&
        server.buffer.buffered === 0 &&
        (server.spool?.stats.points ?? 0) === 0,
      60_000,
      'agents and server drained',
    );
    const text = await (await fetch(`${server.url}/metrics`)).text();

    // the backpressure happened and was visible
    expect(cycles).toBeGreaterThanOrEqual(5);
    expect(metric(text, 'gpupulse_storage_points_spooled_total')).toBeGreaterThan(0);
    expect(metric(text, 'gpupulse_samples_refused_total', '{reason="spool_full"}')).toBeGreaterThan(0);
    expect(maxBacklog).toBeGreaterThan(1000);
    expect(staleDuringStop).toEqual([]);
    expect(agents.reduce((n, a) => n + a.t.refused, 0)).toBeGreaterThan(0);
    // and nothing was lost: no drops anywhere, every produced sample acked
    for (const reason of ['overflow', 'rejected', 'shutdown', 'spool_full', 'spool_corrupt']) {
      expect(metric(text, 'gpupulse_storage_points_dropped_total', `{reason="${reason}"}`), reason).toBe(0);
    }
    for (const a of agents) {
      expect(a.queue.dropped, a.node).toBe(0);
      expect(a.t.rejected, a.node).toBe(0);
      expect(a.t.acked, a.node).toBe(a.produced);
    }

    // acked = stored, per series: one nvidia_smi point per GPU per acked sample, one host point
    const gpuSeries = await influxql(
      influxd,
      db,
      'SELECT count(memory_total) FROM nvidia_smi GROUP BY host, uuid',
    );
    expect(gpuSeries).toHaveLength(NODES * GPUS);
    const ackedByNode = new Map(agents.map((a) => [a.node, a.t.acked]));
    for (const s of gpuSeries) {
      expect(s.values[0]?.[1], `${s.tags?.host} ${s.tags?.uuid}`).toBe(ackedByNode.get(s.tags!.host!));
    }
    const hostSeries = await influxql(
      influxd,
      db,
      'SELECT count(cpu_percent) FROM gpupulse_host GROUP BY host',
    );
    expect(hostSeries).toHaveLength(NODES);
    for (const s of hostSeries) expect(s.values[0]?.[1], s.tags?.host).toBe(ackedByNode.get(s.tags!.host!));
    const total = agents.reduce((n, a) => n + a.t.acked, 0);
    expect(total).toBeGreaterThan(NODES * 4 * 15);
  }, 120_000);
});

describe('TOO_LARGE end to end (real server, real agent transport)', () => {
  it('answers an oversized report TOO_LARGE on a connection that stays up; the agent halves and everything lands', async () => {
    const store = new MemoryStore();
    const server = await createServer({
      store,
      config: {
        port: 0,
        host: '127.0.0.1',
        agentTokens: [TOKEN],
        writeBuffer: { batchSize: 5000, flushIntervalMs: 50, maxPoints: 100_000 },
      },
    });
    cleanups.push(() => server.close());
    let connections = 0;
    server.io.of(AGENT_NAMESPACE).on('connection', () => connections++);
    const sim = createSimFleet({ nodes: 1, gpusPerNode: 4, prefix: 'big', intervalMs: 1000, seed: 3 });
    const queue = new MemoryQueue(10_000);
    const N = 300;
    const t0 = Date.now() - N * 1000;
    for (let i = 0; i < N; i++) {
      const s = structuredClone(sim.tick(0, t0 + i * 1000)) as Sample;
      // ~20 KB per sample: 300 of them are far over the 4 MiB message limit
      s.gpuCollector = 'stale';
      s.gpuError = 'e'.repeat(4000);
      for (const g of s.gpus) g.error = 'g'.repeat(4000);
      queue.push(s);
    }
    expect(JSON.stringify({ samples: queue.oldest(N) }).length).toBeGreaterThan(LIMITS.maxMessageBytes);
    const t = transport(server.url, 'big-0001', queue, { replayBatchesPerSec: 50 });
    t.start();
    await until(() => queue.size === 0, 30_000, 'queue drained');
    expect(queue.dropped).toBe(0);
    expect(t.acked).toBe(N);
    expect(connections).toBe(1);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(
      metric(text, 'gpupulse_rejected_payloads_total', '{event="samples:report",reason="too_large"}'),
    ).toBeGreaterThan(0);
    await until(
      () =>
        store
          .readSeries({ measurement: 'nvidia_smi', field: 'memory_total' })
          .filter((p) => p.tags.host === 'big-0001').length ===
        N * 4,
      5000,
      'every GPU point stored',
    );
  });

  it('never sends a frame over the transport limit: splits it, drops single samples the server cannot take', async () => {
    const server = await createServer({
      store: new MemoryStore(),
      config: { port: 0, host: '127.0.0.1', agentTokens: [TOKEN] },
    });
    cleanups.push(() => server.close());
    let connections = 0;
    server.io.of(AGENT_NAMESPACE).on('connection', () => connections++);
    const sim = createSimFleet({ nodes: 1, gpusPerNode: 2, prefix: 'huge', intervalMs: 1000, seed: 5 });
    const queue = new MemoryQueue(100);
    const t0 = Date.now() - 10_000;
    for (let i = 0; i < 2; i++) {
      // ~8.5 MB each (2,048 processes with 4 KiB command lines): two of them pass 16 MiB
      const s = structuredClone(sim.tick(0, t0 + i * 1000)) as Sample;
      const uuid = s.gpus[0]!.uuid;
      s.processes = Array.from({ length: LIMITS.maxProcessesPerSample }, (_, pid) => ({
        gpuUuid: uuid,
        pid: pid + 1,
        usedMemoryMiB: 1,
        name: 'python',
        cmdline: 'c'.repeat(LIMITS.maxTextLength),
      }));
      queue.push(s);
    }
    queue.push(structuredClone(sim.tick(0, t0 + 5000)) as Sample);
    expect(JSON.stringify({ samples: queue.oldest(2) }).length).toBeGreaterThan(LIMITS.maxTransportBytes);
    const t = transport(server.url, 'huge-0001', queue, { replayBatchesPerSec: 50 });
    t.start();
    await until(() => queue.size === 0, 30_000, 'queue drained');
    expect(t.acked).toBe(1);
    expect(queue.dropped).toBe(2);
    expect(connections).toBe(1);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(
      metric(text, 'gpupulse_rejected_payloads_total', '{event="samples:report",reason="too_large"}'),
    ).toBe(2);
  });
});
