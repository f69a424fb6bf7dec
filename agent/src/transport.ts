// Socket.IO client to the server's /agent namespace: handshake, inventory, samples with acks.
// Never emits while disconnected (socket.io-client's own offline buffer is unbounded); unacked
// samples wait in the bounded SampleQueue instead.
import {
  type Ack,
  AGENT_NAMESPACE,
  type AgentAuth,
  type AgentToServerEvents,
  type Inventory,
  LIMITS,
  PROTOCOL_VERSION,
  type Sample,
  type SamplesAckData,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';
import { backoffDelay } from './backoff.ts';
import { type AttemptEnd, FailoverList } from './failover.ts';
import type { Logger } from './logger.ts';
import type { SampleQueue } from './queue.ts';

export type AgentSocket = Socket<ServerToAgentEvents, AgentToServerEvents>;

export interface TransportOptions {
  /** Server base URL, e.g. `http://gpupulse:8080`. */
  url: string;
  /** Servers in failover order (`url` is used when absent): an unreachable one → the next, with jitter. */
  urls?: readonly string[];
  /** PEM certificate(s) of a private CA to trust for https/wss servers. */
  ca?: string;
  token: string;
  node: string;
  intervalMs: number;
  agentVersion: string;
  logger: Logger;
  queue: SampleQueue;
  /** Built on each connect and sent as `inventory:report`. */
  inventory: () => Promise<Inventory>;
  /** How long to wait for an ack before resending. Default 10 s. */
  ackTimeoutMs?: number;
  /**
   * The one reconnect schedule (see FailoverList): the first retry after a lost connection waits
   * this ±25 %, a hop to the next server a random 0…this; each failed round doubles it. Default 1 s.
   */
  reconnectInitialMs?: number;
  /** Cap of every reconnect delay, jitter included. Default 30 s. */
  reconnectMaxMs?: number;
  /** Backlog replay: at most this many samples per batch (default 500) … */
  replayBatchSize?: number;
  /** … and at most this many batches per second (default 10, with ±25 % jitter). */
  replayBatchesPerSec?: number;
  /** Warn when the server's clock differs by more than this (default 2000 ms). */
  clockSkewWarnMs?: number;
  /** Called on every (re)connect, before anything is sent. */
  onConnect?: () => void;
  /** Called with each ack's server time and the local receive time (tests, stats). */
  onServerTime?: (serverTime: number, localTime: number) => void;
}

/** Size of a report as sent (JSON); exact bytes only when it could be near the limit. */
function reportBytes(report: unknown): number {
  const json = JSON.stringify(report);
  return json.length * 3 <= LIMITS.maxTransportBytes ? json.length : Buffer.byteLength(json, 'utf8');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SocketTransport {
  /** The connection to the current server (replaced when failing over to the next). */
  socket: AgentSocket;
  readonly servers: FailoverList;
  /** The one pending reconnect (socket.io-client's own reconnection is off: no second schedule). */
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly auth: AgentAuth;
  private readonly log: Logger;
  private readonly ackTimeoutMs: number;
  private readonly reconnectInitialMs: number;
  private readonly reconnectMaxMs: number;
  private pumping = false;
  private closed = false;
  private liveSentSeq = -1;
  private batchLimit: number = LIMITS.maxSamplesPerBatch;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private lastConnectError: string | null = null;
  private wasConnected = false;
  private idleWaiters: Array<() => void> = [];
  private replayTimer: NodeJS.Timeout | null = null;
  private nextReplayAt = 0;
  private skewWarned = false;
  private readonly replayBatchSize: number;
  private readonly replayGapMs: number;
  private readonly clockSkewWarnMs: number;
  /** Last measured clock skew (server − agent, ms), null before the first ack. */
  clockSkewMs: number | null = null;
  /** Backlog batches sent with `replay: true` since start. */
  replayBatches = 0;
  /** Samples acked by the server since start. */
  acked = 0;
  /** Samples the server refused for good (dropped, counted in the queue's `dropped`). */
  rejected = 0;
  /** Reports the server did not take for now (RATE_LIMITED, UNAVAILABLE, INTERNAL): resent later. */
  refused = 0;
  private refusedStreak = 0;
  private retryAfterMs = 0;
  private backpressured = false;
  private readonly rejectLogged = new Set<string>();

  constructor(private readonly opts: TransportOptions) {
    this.log = opts.logger;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    this.reconnectInitialMs = opts.reconnectInitialMs ?? 1_000;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 30_000;
    this.replayBatchSize = Math.max(1, Math.min(LIMITS.maxSamplesPerBatch, opts.replayBatchSize ?? 500));
    this.replayGapMs = 1000 / Math.max(0.01, opts.replayBatchesPerSec ?? 10);
    this.clockSkewWarnMs = opts.clockSkewWarnMs ?? 2_000;
    this.auth = {
      token: opts.token,
      node: opts.node,
      protocolVersion: PROTOCOL_VERSION,
      agentVersion: opts.agentVersion,
      intervalMs: opts.intervalMs,
    };
    this.servers = new FailoverList(opts.urls && opts.urls.length > 0 ? opts.urls : [opts.url], {
      initialMs: this.reconnectInitialMs,
      maxMs: this.reconnectMaxMs,
    });
    this.socket = this.openSocket(this.servers.current);
  }

  private openSocket(url: string): AgentSocket {
    const base = url.replace(/\/+$/, '');
    const socket: AgentSocket = io(`${base}${AGENT_NAMESPACE}`, {
      auth: this.auth,
      autoConnect: false,
      forceNew: true,
      transports: ['websocket'],
      // Reconnects follow the transport's one schedule (scheduleReconnect): socket.io-client's own
      // backoff would run beside it and the delays would add up after a long outage.
      reconnection: false,
      timeout: 20_000,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
    });
    socket.on('connect', () => this.onConnect());
    socket.on('disconnect', (reason) => {
      const was = this.wasConnected;
      if (was) this.log.warn({ reason, url: base }, 'disconnected from server');
      this.wasConnected = false;
      // Dropped after connecting: the same server first (it may be restarting); dropped during the
      // handshake: an unreachable server.
      this.scheduleReconnect(was ? 'lost' : 'unreachable');
    });
    socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
      const code = err.data?.code ?? null;
      const message = err.data?.message ?? err.message;
      const text = `${code ?? 'CONNECT_ERROR'}: ${message} (${base})`;
      if (text !== this.lastConnectError) {
        this.log.error({ code, reason: message, url: base }, 'server refused or unreachable');
        this.lastConnectError = text;
      } else {
        this.log.debug({ code, reason: message }, 'connect failed again');
      }
      // Unreachable (no refusal code): the next server in order (with one server: the same one);
      // refused by the server's middleware (a code): the same server, after the backoff.
      this.scheduleReconnect(code === null ? 'unreachable' : 'refused');
    });
    socket.on('server:notice', (n) => {
      if (n.code === 'CLOCK_SKEW') {
        if (this.skewWarned) return;
        this.skewWarned = true;
      }
      const level = n.level === 'error' ? 'error' : n.level === 'warn' ? 'warn' : 'info';
      this.log[level]({ code: n.code }, `server notice: ${n.message}`);
    });
    return socket;
  }

  /**
   * The only place a reconnect is scheduled: the delay comes from the one schedule in
   * FailoverList (quick jittered hops within a round, one capped backoff per failed round). A
   * second trigger for the same failure (connect_error and disconnect) finds the timer set.
   */
  private scheduleReconnect(end: AttemptEnd): void {
    if (this.closed || this.reconnectTimer) return;
    const from = this.servers.current;
    const { url, delayMs } = this.servers.next(end);
    if (url !== from) {
      this.log.warn({ from, to: url, delayMs }, 'server unreachable; failing over to the next server');
      const old = this.socket;
      old.removeAllListeners();
      old.disconnect();
      this.socket = this.openSocket(url);
    } else {
      this.log.debug(
        { url, delayMs, failedRounds: this.servers.failedRounds, end },
        'reconnecting after a delay',
      );
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed && !this.socket.connected) this.socket.connect();
    }, delayMs);
  }

  start(): void {
    this.socket.connect();
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  private onConnect(): void {
    this.wasConnected = true;
    this.servers.connected();
    this.skewWarned = false;
    this.nextReplayAt = 0;
    this.lastConnectError = null;
    this.log.info({ queued: this.opts.queue.size, url: this.servers.current }, 'connected to server');
    this.opts.onConnect?.();
    void this.sendInventory();
    this.notify();
  }

  private async sendInventory(): Promise<void> {
    try {
      const inventory = await this.opts.inventory();
      if (!this.socket.connected) return;
      const ack = (await this.socket
        .timeout(this.ackTimeoutMs)
        .emitWithAck('inventory:report', inventory)) as Ack<{
        serverTime: number;
      }>;
      if (!ack.ok) this.log.warn({ code: ack.error.code, reason: ack.error.message }, 'inventory rejected');
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'inventory not acknowledged');
    }
  }

  /** A new sample was queued: send when possible. */
  notify(): void {
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.closed || this.retryTimer) return;
    this.pumping = true;
    try {
      const q = this.opts.queue;
      while (this.socket.connected && !this.closed) {
        // Live first (the newest sample, once), then the backlog oldest first, at a bounded rate
        // (≤ replayBatchesPerSec batches of ≤ replayBatchSize, jittered) so that many agents
        // reconnecting at once do not flatten the server.
        const newest = q.newest();
        let batch: Sample[];
        let replay = false;
        if (newest && newest.seq !== this.liveSentSeq) {
          batch = [newest];
          this.liveSentSeq = newest.seq;
        } else {
          if (q.size === 0) break;
          const wait = this.nextReplayAt - Date.now();
          if (wait > 0) {
            if (!this.replayTimer) {
              this.replayTimer = setTimeout(() => {
                this.replayTimer = null;
                this.notify();
              }, wait);
            }
            break;
          }
          batch = q.oldest(Math.min(this.batchLimit, this.replayBatchSize));
          replay = true;
          if (batch.length === 0) break;
          this.nextReplayAt = Date.now() + this.replayGapMs * (0.75 + Math.random() * 0.5);
          this.replayBatches++;
        }
        const progressed = await this.sendBatch(batch, replay);
        if (!progressed && !this.socket.connected) {
          // The connection dropped under the send: the reconnect (onConnect) sends again; no send
          // backoff on top of the reconnect's.
          this.retryAfterMs = 0;
          this.backpressured = false;
          break;
        }
        if (!progressed) {
          this.failures++;
          // The server's retry hint (backpressure) when it gave one, else exponential backoff.
          const delay = Math.max(
            backoffDelay(this.failures - 1, 500, this.reconnectMaxMs),
            this.retryAfterMs,
          );
          this.retryAfterMs = 0;
          if (this.backpressured) {
            // UNAVAILABLE: storage is behind. The backlog waits for the hint; the next live sample
            // still goes out on its tick (the server keeps the wall fresh with it, and it stays
            // queued here until acked), so the node does not turn stale on the wall.
            this.backpressured = false;
            this.nextReplayAt = Date.now() + delay;
            if (!this.replayTimer) {
              this.replayTimer = setTimeout(() => {
                this.replayTimer = null;
                this.notify();
              }, delay);
            }
            break;
          }
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.notify();
          }, delay);
          break;
        }
        this.failures = 0;
      }
    } finally {
      this.pumping = false;
      if (this.opts.queue.size === 0 || !this.socket.connected) this.wakeIdle();
    }
  }

  private checkSkew(serverTime: number, sentAt: number): void {
    const receivedAt = Date.now();
    this.opts.onServerTime?.(serverTime, receivedAt);
    // The server stamped its clock somewhere between send and receive: compare with the midpoint.
    const skew = serverTime - (sentAt + receivedAt) / 2;
    this.clockSkewMs = Math.round(skew);
    if (Math.abs(skew) > this.clockSkewWarnMs && !this.skewWarned) {
      this.skewWarned = true;
      this.log.warn(
        { skewMs: this.clockSkewMs },
        `server clock is ${Math.abs(this.clockSkewMs)} ms ${skew > 0 ? 'ahead of' : 'behind'} this node; samples keep the node's timestamps (run NTP/chrony)`,
      );
    }
  }

  /** Sends one batch; true when the queue made progress. */
  private async sendBatch(batch: Sample[], replay: boolean): Promise<boolean> {
    const q = this.opts.queue;
    const report = replay ? { samples: batch, replay: true } : { samples: batch };
    // Never send a frame over the server's transport limit: it would close the connection and be
    // resent forever. Split here (or drop the one sample); between the message limit and that,
    // the server answers TOO_LARGE (below), which splits the same way.
    const bytes = reportBytes(report);
    if (bytes > LIMITS.maxTransportBytes) {
      if (batch.length > 1) {
        this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
        this.log.warn(
          { bytes, batchLimit: this.batchLimit },
          'batch over the message limit; sending smaller batches',
        );
        return true;
      }
      const removed = q.remove([batch[0]!.seq]);
      q.countDropped(removed);
      this.rejected += removed;
      this.log.error(
        { bytes, limit: LIMITS.maxTransportBytes, seq: batch[0]!.seq },
        'sample larger than the transport limit; dropped it',
      );
      return true;
    }
    let ack: Ack<SamplesAckData>;
    const sentAt = Date.now();
    try {
      ack = (await this.socket
        .timeout(this.ackTimeoutMs)
        .emitWithAck('samples:report', report)) as Ack<SamplesAckData>;
    } catch (err) {
      this.log.debug({ err: errorText(err), samples: batch.length }, 'samples not acknowledged; will resend');
      return false;
    }
    if (ack.ok) {
      this.checkSkew(ack.data.serverTime, sentAt);
      // Acked samples of this batch no longer queued were dropped for room while in flight (only
      // drops take samples out while a batch is out): the server has them, they are not lost.
      const ackedSeqs = new Set(ack.data.acked);
      let delivered = 0;
      for (const s of batch) if (ackedSeqs.has(s.seq) && !q.has(s.seq)) delivered++;
      const removed = q.remove(ack.data.acked);
      if (delivered > 0) {
        q.countDelivered(delivered);
        this.log.info(
          { delivered },
          'samples dropped for room while in flight were acknowledged: stored after all, not counted as dropped',
        );
      }
      this.acked += removed + delivered;
      // Samples refused for good (invalid, or ts outside the server's window): resending them
      // cannot succeed — drop, count, log the reason (once per code; the rest at debug).
      const rejected = ack.data.rejected ?? [];
      let dropped = 0;
      if (rejected.length > 0) {
        const seqs = rejected.map((r) => r.seq).filter((x): x is number => x !== null);
        // A rejected entry without a seq names its sample by position in the report.
        for (const r of rejected) if (r.seq === null && batch[r.index]) seqs.push(batch[r.index]!.seq);
        dropped = q.remove(seqs);
        q.countDropped(dropped);
        this.rejected += dropped;
        for (const r of rejected) {
          const first = !this.rejectLogged.has(r.code);
          this.rejectLogged.add(r.code);
          this.log[first ? 'error' : 'debug'](
            { code: r.code, seq: r.seq, reason: r.message, dropped: rejected.length },
            first
              ? 'server refused samples for good; dropped them (counted; further ones of this code logged at debug)'
              : 'server refused a sample; dropped it',
          );
        }
      }
      this.refusedStreak = 0;
      return removed + delivered + dropped > 0;
    }
    const { code, message } = ack.error;
    if (code === 'VALIDATION' || (code === 'TOO_LARGE' && batch.length === 1)) {
      // VALIDATION on the whole report: none of its samples can be taken (the server lists
      // rejected samples in an ok ack when some of a report are valid).
      const removed = q.remove(batch.map((s) => s.seq));
      q.countDropped(removed);
      this.rejected += removed;
      this.log.error({ code, reason: message, dropped: removed }, 'server rejected samples; dropped them');
      return true;
    }
    if (code === 'TOO_LARGE') {
      this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
      this.log.warn({ batchLimit: this.batchLimit }, 'batch too large; sending smaller batches');
      return true;
    }
    // RATE_LIMITED, UNAVAILABLE (storage behind: backpressure), INTERNAL: keep them, resend later.
    this.refused++;
    this.retryAfterMs = ack.error.retryAfterMs ?? 0;
    this.backpressured = code === 'UNAVAILABLE';
    if (this.refusedStreak++ === 0) {
      this.log.warn(
        { code, reason: message, retryAfterMs: ack.error.retryAfterMs, queued: q.size },
        'server did not take samples; keeping them and retrying',
      );
    } else {
      this.log.debug({ code, reason: message }, 'server did not take samples again');
    }
    return false;
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Waits until the queue is empty (everything acked) or the deadline passes; true when empty. */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.opts.queue.size > 0 && Date.now() < deadline) {
      if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
      }
      this.notify();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now())));
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.opts.queue.size === 0;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.replayTimer) clearTimeout(this.replayTimer);
    this.replayTimer = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.retryTimer = this.reconnectTimer = null;
    this.socket.removeAllListeners();
    this.socket.disconnect();
    this.wakeIdle();
  }
}
