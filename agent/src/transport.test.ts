// Real Socket.IO server on port 0, real client.
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Ack,
  type AgentAuth,
  type AgentToServerEvents,
  type Sample,
  type SamplesAckData,
  SamplesReportSchema,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { Server } from 'socket.io';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from './logger.ts';
import { MemoryQueue, type SampleQueue } from './queue.ts';
import { DiskSpool } from './spool.ts';
import { SocketTransport, type TransportOptions } from './transport.ts';

interface Harness {
  url: string;
  io: Server<AgentToServerEvents, ServerToAgentEvents>;
  http: HttpServer;
  received: Sample[];
  reports: Array<{ seqs: number[]; replay: boolean }>;
  auths: AgentAuth[];
  inventories: number;
  reply: (samples: Sample[]) => Ack<SamplesAckData> | null;
  refuse: { code: string; message: string } | null;
  refusals: number;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function startServer(): Promise<Harness> {
  const http = createServer();
  const io = new Server<AgentToServerEvents, ServerToAgentEvents>(http);
  const h: Harness = {
    url: '',
    io,
    http,
    received: [],
    reports: [],
    auths: [],
    inventories: 0,
    reply: (samples) => ({ ok: true, data: { acked: samples.map((s) => s.seq), serverTime: Date.now() } }),
    refuse: null,
    refusals: 0,
  };
  const ns = io.of('/agent');
  ns.use((socket, next) => {
    if (h.refuse) {
      h.refusals++;
      const err = new Error(h.refuse.message) as Error & { data?: unknown };
      err.data = h.refuse;
      return next(err);
    }
    h.auths.push(socket.handshake.auth as AgentAuth);
    next();
  });
  ns.on('connection', (socket) => {
    socket.on('inventory:report', (_inv, ack) => {
      h.inventories++;
      ack({ ok: true, data: { serverTime: Date.now() } });
    });
    socket.on('samples:report', (report, ack) => {
      const parsed = SamplesReportSchema.parse(report);
      h.reports.push({ seqs: parsed.samples.map((s) => s.seq), replay: parsed.replay === true });
      const reply = h.reply(parsed.samples);
      if (!reply) return; // lose the ack
      if (reply.ok) h.received.push(...parsed.samples.filter((s) => reply.data.acked.includes(s.seq)));
      ack(reply);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  h.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        io.close(() => r());
      }),
  );
  return h;
}

const sample = (seq: number): Sample => ({
  seq,
  ts: 1_700_000_000_000 + seq,
  gpuCollector: 'absent',
  gpus: [],
  host: null,
});

function connect(
  url: string,
  queue: SampleQueue,
  extra: Partial<Omit<TransportOptions, 'queue' | 'url'>> = {},
) {
  const t = new SocketTransport({
    url,
    token: 'tok',
    node: 'node-1',
    intervalMs: 1000,
    agentVersion: '0.1.0',
    logger: createSilentLogger(),
    queue,
    inventory: async () => ({
      agentVersion: '0.1.0',
      hostname: 'node-1',
      os: null,
      kernel: null,
      cpuModel: null,
      cpuCores: null,
      memoryTotalBytes: null,
      gpus: [],
    }),
    reconnectInitialMs: 50,
    reconnectMaxMs: 200,
    ...extra,
  });
  cleanup.push(() => t.close());
  return t;
}

const until = async (cond: () => boolean, timeoutMs = 5_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('SocketTransport', () => {
  it('handshake auth, inventory once per connection, samples acked and removed', async () => {
    const h = await startServer();
    const q = new MemoryQueue();
    const t = connect(h.url, q);
    t.start();
    await until(() => t.connected);
    for (let i = 0; i < 3; i++) {
      q.push(sample(i));
      t.notify();
    }
    await until(() => q.size === 0);
    expect(h.received.map((s) => s.seq).sort()).toEqual([0, 1, 2]);
    expect(h.auths[0]).toMatchObject({ token: 'tok', node: 'node-1', protocolVersion: 1, intervalMs: 1000 });
    await until(() => h.inventories === 1);
  });

  it('backlog after an outage: live sample first, then the backlog as replay batches', async () => {
    const h = await startServer();
    const q = new MemoryQueue();
    for (let i = 0; i < 10; i++) q.push(sample(i));
    const t = connect(h.url, q);
    t.start();
    await until(() => q.size === 0);
    expect(h.reports[0]).toEqual({ seqs: [9], replay: false });
    expect(h.reports[1]).toEqual({ seqs: [0, 1, 2, 3, 4, 5, 6, 7, 8], replay: true });
  });

  it('VALIDATION error: samples dropped and counted, not retried forever', async () => {
    const h = await startServer();
    h.reply = () => ({ ok: false, error: { code: 'VALIDATION', message: 'samples.0.ts: bad' } });
    const q = new MemoryQueue();
    const t = connect(h.url, q);
    t.start();
    await until(() => t.connected);
    q.push(sample(1));
    t.notify();
    await until(() => q.size === 0);
    expect(q.dropped).toBe(1);
    expect(h.reports).toHaveLength(1);
  });

  it('a lost ack is retried after the ack timeout', async () => {
    const h = await startServer();
    let lose = true;
    h.reply = (samples) => {
      if (lose) {
        lose = false;
        return null;
      }
      return { ok: true, data: { acked: samples.map((s) => s.seq), serverTime: 0 } };
    };
    const q = new MemoryQueue();
    const t = connect(h.url, q, { ackTimeoutMs: 200 });
    t.start();
    await until(() => t.connected);
    q.push(sample(5));
    t.notify();
    await until(() => q.size === 0);
    expect(h.reports.map((r) => r.seqs)).toEqual([[5], [5]]);
  });

  it('refused by the server (UNAUTHORIZED): keeps retrying, connects once allowed', async () => {
    const h = await startServer();
    h.refuse = { code: 'UNAUTHORIZED', message: 'unknown agent token' };
    const q = new MemoryQueue();
    const t = connect(h.url, q);
    t.start();
    await until(() => h.refusals >= 3);
    expect(t.connected).toBe(false);
    h.refuse = null;
    await until(() => t.connected);
  });

  it('never emits while disconnected; flush sends what it can before close', async () => {
    const q = new MemoryQueue();
    const t = connect('http://127.0.0.1:9', q);
    t.start();
    q.push(sample(1));
    t.notify();
    expect(await t.flush(200)).toBe(false);
    expect(q.size).toBe(1);
  });

  it('replay is bounded: ≤ batch size per report, ≤ batches per second; live samples go first', async () => {
    const h = await startServer();
    const q = new MemoryQueue();
    for (let i = 0; i < 50; i++) q.push(sample(i));
    const t = connect(h.url, q, { replayBatchSize: 10, replayBatchesPerSec: 20 });
    const t0 = Date.now();
    t.start();
    await until(() => t.connected);
    q.push(sample(50));
    t.notify();
    await until(() => q.size === 0);
    const elapsed = Date.now() - t0;
    const replays = h.reports.filter((r) => r.replay);
    expect(replays.length).toBe(5);
    for (const r of replays) expect(r.seqs.length).toBeLessThanOrEqual(10);
    // 5 batches at 20/s (±25 % jitter) take at least 4 × 37 ms
    expect(elapsed).toBeGreaterThanOrEqual(140);
    // both live samples went before any replay batch that was due after them
    expect(h.reports[0]).toEqual({ seqs: [49], replay: false });
    expect(h.reports.find((r) => r.seqs.includes(50))?.replay).toBe(false);
    expect(replays.flatMap((r) => r.seqs).every((s, i, all) => i === 0 || s > (all[i - 1] ?? -1))).toBe(true); // oldest first
  });

  it('clock skew > 2 s: measured from the ack, warned once per connection', async () => {
    const h = await startServer();
    h.reply = (samples) => ({
      ok: true,
      data: { acked: samples.map((s) => s.seq), serverTime: Date.now() + 5_000 },
    });
    const warnings: string[] = [];
    const logger = createSilentLogger();
    logger.warn = ((_o: unknown, msg?: string) => {
      warnings.push(String(msg));
    }) as typeof logger.warn;
    const q = new MemoryQueue();
    const t = connect(h.url, q, { logger });
    t.start();
    await until(() => t.connected);
    for (let i = 0; i < 3; i++) {
      q.push(sample(i));
      t.notify();
      await until(() => q.size === 0);
    }
    expect(t.clockSkewMs).toBeGreaterThan(4_500);
    expect(warnings.filter((w) => w.includes('server clock is'))).toHaveLength(1);
  });

  it('with the disk spool: an outage backlog is replayed from disk, oldest first, and the spool empties', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-transport-spool-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const q = new DiskSpool({ dir, segmentBytes: 4096, maxAgeMs: 1e12 }); // the samples are from 2023
    for (let i = 0; i < 200; i++) q.push(sample(i));
    const h = await startServer();
    const t = connect(h.url, q);
    t.start();
    await until(() => q.size === 0);
    expect(h.received.map((s) => s.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 200 }, (_, i) => i),
    );
    expect(q.bytes).toBe(0);
    await q.close();
  });
});

describe('SocketTransport: per-sample acks, backpressure, TOO_LARGE', () => {
  it('drops and counts the samples the ack rejects, keeps nothing else back', async () => {
    const h = await startServer();
    h.reply = (samples) => ({
      ok: true,
      data: {
        acked: samples.filter((s) => s.seq % 2 === 0).map((s) => s.seq),
        rejected: samples
          .filter((s) => s.seq % 2 === 1)
          .map((s, i) => ({ seq: s.seq, index: i, code: 'VALIDATION' as const, message: 'gpus.0.x: bad' })),
        serverTime: Date.now(),
      },
    });
    const q = new MemoryQueue();
    for (let i = 0; i < 10; i++) q.push(sample(i));
    const t = connect(h.url, q);
    t.start();
    await until(() => q.size === 0);
    expect(t.acked).toBe(5);
    expect(t.rejected).toBe(5);
    expect(q.dropped).toBe(5);
    // each sample sent once: rejected ones are not retried
    expect(h.reports.flatMap((r) => r.seqs).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('samples dropped for room while their report was in flight, then acked: stored, not counted as dropped', async () => {
    const h = await startServer();
    const q = new MemoryQueue(3);
    for (let i = 0; i < 3; i++) q.push(sample(i));
    let overflowed = false;
    h.reply = (samples) => {
      // while the backlog report [0, 1] is at the server, new samples push 0 and 1 out of the queue
      if (!overflowed && samples.some((s) => s.seq === 0)) {
        overflowed = true;
        for (let k = 10; k < 13; k++) q.push(sample(k));
        expect(q.has(0) || q.has(1)).toBe(false);
        expect(q.dropped).toBe(2);
      }
      return { ok: true, data: { acked: samples.map((s) => s.seq), serverTime: Date.now() } };
    };
    const t = connect(h.url, q);
    t.start();
    await until(() => overflowed && q.size === 0);
    expect(h.received.map((s) => s.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 10, 11, 12]);
    expect(q.dropped).toBe(0);
    expect(t.acked).toBe(6);
  });

  it('UNAVAILABLE: keeps the samples, waits at least the retry hint, then delivers everything', async () => {
    const h = await startServer();
    let refusals = 2;
    const refusedAt: number[] = [];
    h.reply = (samples) => {
      if (refusals-- > 0) {
        refusedAt.push(Date.now());
        return { ok: false, error: { code: 'UNAVAILABLE', message: 'storage is behind', retryAfterMs: 300 } };
      }
      return { ok: true, data: { acked: samples.map((s) => s.seq), serverTime: Date.now() } };
    };
    const q = new MemoryQueue();
    const t = connect(h.url, q);
    t.start();
    await until(() => t.connected);
    for (let i = 0; i < 3; i++) q.push(sample(i));
    t.notify();
    await until(() => q.size === 0);
    expect(refusedAt).toHaveLength(2);
    expect(refusedAt[1]! - refusedAt[0]!).toBeGreaterThanOrEqual(280);
    expect(t.refused).toBe(2);
    expect(q.dropped).toBe(0);
    expect(h.received.map((s) => s.seq).sort()).toEqual([0, 1, 2]);
  });

  it('UNAVAILABLE: live samples keep going out on their ticks (the wall stays fresh); the backlog waits', async () => {
    const h = await startServer();
    const until1 = Date.now() + 1000;
    h.reply = (samples) =>
      Date.now() < until1
        ? { ok: false, error: { code: 'UNAVAILABLE', message: 'storage is behind', retryAfterMs: 5000 } }
        : { ok: true, data: { acked: samples.map((s) => s.seq), serverTime: Date.now() } };
    const q = new MemoryQueue();
    const t = connect(h.url, q);
    t.start();
    await until(() => t.connected);
    let seq = 0;
    const ticker = setInterval(() => {
      q.push(sample(seq++));
      t.notify();
    }, 100);
    cleanup.push(() => clearInterval(ticker));
    await new Promise((r) => setTimeout(r, 900));
    // refused live reports, one per tick, not one per 5 s hint; nothing replayed yet
    const during = h.reports.filter((r) => !r.replay).length;
    expect(during).toBeGreaterThanOrEqual(5);
    expect(h.reports.filter((r) => r.replay)).toHaveLength(0);
    clearInterval(ticker);
    await until(() => q.size === 0, 10_000);
    expect(q.dropped).toBe(0);
    expect(h.received.map((s) => s.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: seq }, (_, i) => i),
    );
  });

  it('TOO_LARGE: halves the batch until it fits; a single sample too large is dropped and counted', async () => {
    const h = await startServer();
    h.reply = (samples) => {
      if (samples.some((s) => s.seq === 77) || samples.length > 60) {
        return { ok: false, error: { code: 'TOO_LARGE', message: 'report is too large' } };
      }
      return { ok: true, data: { acked: samples.map((s) => s.seq), serverTime: Date.now() } };
    };
    const q = new MemoryQueue();
    for (let i = 0; i < 300; i++) q.push(sample(i));
    const t = connect(h.url, q, { replayBatchesPerSec: 1000 });
    t.start();
    await until(() => q.size === 0, 10_000);
    expect(q.dropped).toBe(1);
    expect(h.received.map((s) => s.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 300 }, (_, i) => i).filter((i) => i !== 77),
    );
    // 299 refused, then halves: 149, 74, 37 …
    const sizes = h.reports.map((r) => r.seqs.length);
    expect(sizes.slice(0, 5)).toEqual([1, 299, 149, 74, 37]);
  });
});
