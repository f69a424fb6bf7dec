// Several servers (--server URL,URL) and a private CA (--ca): real Socket.IO servers on port 0,
// real TLS with certificates made by openssl, the agent's real transport.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AgentAuth,
  type AgentToServerEvents,
  type Sample,
  SamplesReportSchema,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { pino } from 'pino';
import { Server } from 'socket.io';
import { afterEach, describe, expect, it } from 'vitest';
import { checkServer } from './check.ts';
import { FailoverList, splitServerList } from './failover.ts';
import { createSilentLogger } from './logger.ts';
import { MemoryQueue } from './queue.ts';
import { SocketTransport, type TransportOptions } from './transport.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Harness {
  url: string;
  received: Sample[];
  auths: AgentAuth[];
  stop(): Promise<void>;
}

/** A minimal /agent server that acks every sample; `tls` serves https/wss with that key and cert. */
async function startServer(tls?: { key: string; cert: string }, port = 0): Promise<Harness> {
  const http: HttpServer = tls ? createHttpsServer(tls) : createHttpServer();
  const io = new Server<AgentToServerEvents, ServerToAgentEvents>(http);
  const h: Harness = { url: '', received: [], auths: [], stop: async () => {} };
  const ns = io.of('/agent');
  ns.use((socket, next) => {
    h.auths.push(socket.handshake.auth as AgentAuth);
    next();
  });
  ns.on('connection', (socket) => {
    socket.on('inventory:report', (_inv, ack) => ack({ ok: true, data: { serverTime: Date.now() } }));
    socket.on('samples:report', (report, ack) => {
      const parsed = SamplesReportSchema.parse(report);
      h.received.push(...parsed.samples);
      ack({ ok: true, data: { acked: parsed.samples.map((s) => s.seq), serverTime: Date.now() } });
    });
  });
  await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
  h.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(http.address() as AddressInfo).port}`;
  let stopped = false;
  h.stop = () =>
    stopped
      ? Promise.resolve()
      : new Promise<void>((r) => {
          stopped = true;
          io.close(() => r());
        });
  cleanup.push(() => h.stop());
  return h;
}

/** A URL where nothing listens (a port bound and released). */
async function deadUrl(): Promise<string> {
  const s = createHttpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

interface DownServer {
  url: string;
  port: number;
  /** When each connection attempt arrived. */
  attempts: number[];
  onAttempt: (n: number) => void;
  close(): Promise<void>;
}

/** A server that is down but sees each attempt: it accepts every TCP connection and resets it at once. */
async function downServer(): Promise<DownServer> {
  const d: DownServer = { url: '', port: 0, attempts: [], onAttempt: () => {}, close: async () => {} };
  const srv = createNetServer((sock) => {
    d.attempts.push(Date.now());
    sock.destroy();
    d.onAttempt(d.attempts.length);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  d.port = (srv.address() as AddressInfo).port;
  d.url = `http://127.0.0.1:${d.port}`;
  let closed = false;
  d.close = () =>
    closed
      ? Promise.resolve()
      : new Promise<void>((r) => {
          closed = true;
          srv.close(() => r());
        });
  cleanup.push(() => d.close());
  return d;
}

const sample = (seq: number): Sample => ({
  seq,
  ts: 1_700_000_000_000 + seq * 1000,
  gpuCollector: 'absent',
  gpus: [],
  host: null,
});

function transport(opts: Partial<TransportOptions> & { url: string }) {
  const queue = new MemoryQueue();
  const t = new SocketTransport({
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
    ...opts,
  });
  cleanup.push(() => t.close());
  return { t, queue };
}

const until = async (cond: () => boolean, timeoutMs = 8_000, what = 'condition') => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('FailoverList', () => {
  it('goes through the servers in order, the first hop jittered, then backs off per full round', () => {
    let r = 0.5;
    const list = new FailoverList(['a', 'b', 'c'], { initialMs: 1000, maxMs: 30_000, random: () => r });
    expect(list.current).toBe('a');
    expect(list.next()).toEqual({ url: 'b', delayMs: 500 });
    r = 0.999;
    expect(list.next().url).toBe('c');
    r = 0;
    // a full round failed: back to the first, with backoff (1 s ±25 %)
    const third = list.next();
    expect(third.url).toBe('a');
    expect(third.delayMs).toBe(750);
    r = 1;
    list.next(); // b
    list.next(); // c
    const round2 = list.next(); // a again, second round: 2 s ±25 %
    expect(round2.url).toBe('a');
    expect(round2.delayMs).toBe(2500);
    list.connected();
    r = 0.25;
    expect(list.next()).toEqual({ url: 'b', delayMs: 250 });
  });

  it('jitter spreads the first hop over 0…initialMs', () => {
    const delays = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const l = new FailoverList(['a', 'b'], { initialMs: 1000, maxMs: 30_000 });
      const d = l.next().delayMs;
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1000);
      delays.add(d);
    }
    expect(delays.size).toBeGreaterThan(10);
  });

  it('one schedule: hops within a round stay quick, each failed round backs off once, never above the cap', () => {
    const r = 1; // the top of every jitter range
    const list = new FailoverList(['a', 'b', 'c'], { initialMs: 100, maxMs: 1000, random: () => r });
    const seen = Array.from({ length: 24 }, () => list.next('unreachable'));
    expect(seen.slice(0, 6).map((s) => s.url)).toEqual(['b', 'c', 'a', 'b', 'c', 'a']);
    for (const [i, s] of seen.entries()) {
      const hop = i + 1;
      if (hop % 3 === 0) {
        // a full round failed: round k waits initialMs · 2^(k−1) +25 %, capped
        const k = hop / 3;
        expect(s.delayMs, `round ${k}`).toBe(
          Math.min(1000, Math.round(Math.min(1000, 100 * 2 ** (k - 1)) * 1.25)),
        );
      } else {
        // within a round, also in late rounds: a quick hop, not a second backoff
        expect(s.delayMs, `hop ${hop}`).toBeLessThanOrEqual(100);
      }
    }
    // with one server every failure is a round: the same backoff, capped
    const one = new FailoverList(['a'], { initialMs: 100, maxMs: 1000, random: () => r });
    expect(Array.from({ length: 7 }, () => one.next('unreachable').delayMs)).toEqual([
      125, 250, 500, 1000, 1000, 1000, 1000,
    ]);
    expect(one.current).toBe('a');
  });

  it('a refusal or a lost connection retries the same server; the schedule restarts after a connection', () => {
    const list = new FailoverList(['a', 'b'], { initialMs: 1000, maxMs: 30_000, random: () => 0.5 });
    // refused by a (it answered): a again after the backoff, not the next server
    expect(list.next('refused')).toEqual({ url: 'a', delayMs: 1000 });
    expect(list.next('refused')).toEqual({ url: 'a', delayMs: 2000 });
    list.connected();
    // a dropped an established connection: a again after initialMs ±25 %
    expect(list.next('lost')).toEqual({ url: 'a', delayMs: 1000 });
    // then unreachable: the next server, quickly
    expect(list.next('unreachable')).toEqual({ url: 'b', delayMs: 500 });
    expect(list.next('unreachable')).toEqual({ url: 'a', delayMs: 1000 });
  });

  it('splits comma-separated lists and lists of lists', () => {
    expect(splitServerList(' http://a:1/, http://b:2 ,,')).toEqual(['http://a:1', 'http://b:2']);
    expect(splitServerList(['http://a:1', 'http://b:2,http://c:3'])).toEqual([
      'http://a:1',
      'http://b:2',
      'http://c:3',
    ]);
  });
});

describe('failover between servers', () => {
  it('the first server down: the agent reports through the second', async () => {
    const dead = await deadUrl();
    const second = await startServer();
    const lines: string[] = [];
    const { t, queue } = transport({
      url: dead,
      urls: [dead, second.url],
      logger: pino({ level: 'info' }, { write: (s: string) => lines.push(s) }),
    });
    t.start();
    queue.push(sample(1));
    t.notify();
    await until(() => second.received.length === 1, 8_000, 'the sample on the second server');
    expect(second.received[0]?.seq).toBe(1);
    expect(second.auths[0]).toMatchObject({ token: 'tok', node: 'node-1' });
    expect(t.servers.current).toBe(second.url);
    await until(() => queue.size === 0, 2_000, 'the queue to empty');
    const failover = lines.map((l) => JSON.parse(l)).find((l) => /failing over/.test(l.msg));
    expect(failover).toMatchObject({ from: dead, to: second.url });
  });

  it('the connected server goes away: the agent moves to the next one and keeps reporting', async () => {
    const first = await startServer();
    const second = await startServer();
    const { t, queue } = transport({ url: first.url, urls: [first.url, second.url] });
    t.start();
    queue.push(sample(1));
    t.notify();
    await until(() => first.received.length === 1, 5_000, 'the first sample on the first server');
    await first.stop();
    queue.push(sample(2));
    t.notify();
    await until(() => second.received.some((s) => s.seq === 2), 10_000, 'sample 2 on the second server');
    expect(first.received.map((s) => s.seq)).toEqual([1]);
    expect(t.servers.current).toBe(second.url);
  });

  it('every server down: keeps trying them in order, nothing dropped, until one comes back', async () => {
    const dead = await deadUrl();
    const dead2 = await deadUrl();
    const lines: string[] = [];
    const { t, queue } = transport({
      url: dead,
      urls: [dead, dead2],
      logger: pino({ level: 'info' }, { write: (s: string) => lines.push(s) }),
    });
    t.start();
    queue.push(sample(1));
    t.notify();
    const hops = () => lines.map((l) => JSON.parse(l)).filter((l) => /failing over/.test(l.msg));
    await until(() => hops().length >= 3, 8_000, 'three failovers');
    expect(t.connected).toBe(false);
    expect(queue.size).toBe(1); // kept, not dropped
    expect(
      hops()
        .slice(0, 3)
        .map((h) => h.to),
    ).toEqual([dead2, dead, dead2]);
    // The second server comes back on its address: the agent gets there and delivers.
    const back = await startServer(undefined, Number(new URL(dead2).port));
    await until(() => back.received.length === 1, 10_000, 'the sample on the server that came back');
    // the server stores before it acks: the agent forgets the sample when the ack arrives
    await until(() => queue.size === 0, 2_000, 'the ack to empty the queue');
    expect(back.received.map((s) => s.seq)).toEqual([1]);
  });
});

describe('one reconnect backoff: a server back after a long outage is reached within one capped delay', () => {
  const INITIAL = 100;
  const MAX = 1000;
  // event-loop and connect time on a loaded 2-core machine; the old stacked delays were ≥ 1.5 × MAX
  const MARGIN = 300;

  async function outage(servers: number) {
    const downs = await Promise.all(Array.from({ length: servers }, () => downServer()));
    const first = downs[0]!;
    const { t } = transport({
      url: first.url,
      urls: downs.map((d) => d.url),
      reconnectInitialMs: INITIAL,
      reconnectMaxMs: MAX,
    });
    // The first server comes back right after an attempt on it failed, once the backoff has
    // reached its cap (initial 100 → 200, 400, 800, 1000): the worst moment for stacked delays.
    let backAt = 0;
    let back: Promise<unknown> | null = null;
    first.onAttempt = (n) => {
      if (n !== 7 || back) return;
      back = first.close().then(async () => {
        await startServer(undefined, first.port);
        backAt = Date.now();
      });
    };
    t.start();
    await until(() => backAt > 0, 15_000, 'the seventh attempt on the first server');
    await until(() => t.connected, 5_000, 'the agent connected to the server that came back');
    const connectedAt = Date.now();
    const gapMs = connectedAt - backAt;
    const sameServerGaps = first.attempts.slice(1).map((a, i) => a - first.attempts[i]!);
    const all = downs.flatMap((d, s) => d.attempts.map((at) => ({ at, s }))).sort((a, b) => a.at - b.at);
    const waits = all.slice(1).map((a, i) => a.at - all[i]!.at);
    return { t, gapMs, sameServerGaps, waits, order: all.map((a) => a.s) };
  }

  it('one server: every wait ≤ the cap, back within the cap', async () => {
    const r = await outage(1);
    console.log('reconnect gap, one server:', JSON.stringify({ gapMs: r.gapMs, waits: r.waits }));
    expect(r.waits.length).toBeGreaterThanOrEqual(6);
    for (const w of r.waits) expect(w).toBeLessThanOrEqual(MAX + MARGIN);
    expect(r.gapMs).toBeLessThanOrEqual(MAX + MARGIN);
    expect(r.t.servers.current).toBe(r.t.servers.urls[0]);
  });

  it('two servers: failover order kept, one backoff per round, back within the cap and one quick hop', async () => {
    const r = await outage(2);
    console.log(
      'reconnect gap, two servers:',
      JSON.stringify({ gapMs: r.gapMs, sameServerGaps: r.sameServerGaps, waits: r.waits }),
    );
    // in order: first, second, first, second …
    expect(r.order).toEqual(r.order.map((_, i) => i % 2));
    // each wait is one delay of the schedule (a quick hop or one round's backoff) …
    for (const w of r.waits) expect(w).toBeLessThanOrEqual(MAX + MARGIN);
    // … and the same server is retried within one backoff and one quick hop, never two backoffs
    for (const g of r.sameServerGaps) expect(g).toBeLessThanOrEqual(MAX + INITIAL + MARGIN);
    expect(r.gapMs).toBeLessThanOrEqual(MAX + INITIAL + MARGIN);
    expect(r.t.servers.current).toBe(r.t.servers.urls[0]);
  });
});

describe('--ca: a private certificate authority', () => {
  function makeCa(): { dir: string; ca: string; key: string; cert: string } {
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-ca-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const f = (n: string) => join(dir, n);
    const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')]);
    ossl([
      'req',
      '-x509',
      '-new',
      '-key',
      f('ca.key'),
      '-sha256',
      '-days',
      '2',
      '-subj',
      '/CN=Test Private CA',
      '-out',
      f('ca.crt'),
    ]);
    ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('server.key')]);
    ossl(['req', '-new', '-key', f('server.key'), '-subj', '/CN=127.0.0.1', '-out', f('server.csr')]);
    writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ossl([
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-sha256',
      '-extfile',
      f('ext.cnf'),
      '-out',
      f('server.crt'),
    ]);
    return {
      dir,
      ca: readFileSync(f('ca.crt'), 'utf8'),
      key: readFileSync(f('server.key'), 'utf8'),
      cert: readFileSync(f('server.crt'), 'utf8'),
    };
  }

  it('with the CA the agent reports over wss; without it the server is not trusted', async () => {
    const pki = makeCa();
    const server = await startServer({ key: pki.key, cert: pki.cert });
    expect(server.url).toMatch(/^https:/);

    // Without --ca: the certificate is not trusted, nothing is sent.
    expect(await checkServer(server.url, 'tok', 'node-1', 5_000)).toMatch(/unreachable/);
    // With --ca:
    expect(await checkServer(server.url, 'tok', 'node-1', 5_000, pki.ca)).toBeNull();

    const { t, queue } = transport({ url: server.url, ca: pki.ca });
    t.start();
    queue.push(sample(1));
    t.notify();
    await until(() => server.received.length === 1, 5_000, 'the sample over wss');
    expect(server.auths.length).toBeGreaterThanOrEqual(2); // the check and the transport
  });
});
