/**
 * Scale-out over Redis (`GPUPULSE_REDIS_URL`): several server processes form one service.
 *
 * - Fleet: each process publishes what its own agents do (connect, samples, inventory, driver
 *   events, disconnect) on the `gpupulse:fleet` channel, batched every 10 ms; every other process
 *   applies it to its replica (`ReplicatedFleet`). A heartbeat every second; an owner silent for
 *   `ownerDeadMs` has its nodes taken offline until their agents reconnect elsewhere.
 * - Dashboards: `@socket.io/redis-adapter` carries the cluster-wide events (alert changes, which
 *   only the lease holder or the acknowledging process sends); each process sends `fleet:delta`
 *   and `projects:usage` to its own dashboards from its replica (see dashboard-namespace.ts).
 * - Singleton work: a `RedisLease` (`gpupulse:lease:singleton`).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Alert, GpuEvent } from '@gpupulse/protocol';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { RedisLease } from './lease.ts';
import { closeRedis, connectRedis, type RedisClient, redactUrl } from './redis.ts';
import type { Envelope, FleetMessage, RecentBatch, ReplicatedFleet } from './replicated-fleet.ts';

export const FLEET_CHANNEL = 'gpupulse:fleet';

export interface ClusterOptions {
  url: string;
  fleet: ReplicatedFleet;
  logger: Logger;
  registry: Registry;
  /** Driver events of another process's nodes (for this process's alert engine). */
  onRemoteEvents(
    node: string,
    events: GpuEvent[],
    gpus: readonly { uuid: string; pciBusId: string | null }[],
  ): void;
  /** An alert acknowledged on another process. */
  onRemoteAck(id: string, ack: NonNullable<Alert['acknowledged']>): void;
  /**
   * A process went silent: the samples of its nodes that arrived here in its last seconds
   * (`tailMs`), which it may have acked without storing — the app writes them again
   * (idempotent in InfluxDB: same series and time).
   */
  onOwnerGone?(owner: string, recent: RecentBatch[]): void;
  /** Default 5000 ms. */
  tailMs?: number;
  /** Default 1000 ms. */
  heartbeatMs?: number;
  /** A process silent this long is gone (default 5000 ms). */
  ownerDeadMs?: number;
  /** Singleton lease time / renewal (default 5000 / 1500 ms). */
  leaseTtlMs?: number;
  leaseRenewMs?: number;
  /** Most fleet messages waiting to be published (default 50,000; more are dropped and counted). */
  maxPending?: number;
}

export interface Cluster {
  /** This process (`host:pid:random`). */
  readonly id: string;
  readonly lease: RedisLease;
  /** A command client (shared; do not close). */
  readonly redis: RedisClient;
  /** The Socket.IO adapter factory (`io.adapter(cluster.adapter)`). */
  readonly adapter: ReturnType<typeof createAdapter>;
  /** Publishes a local node's driver events to the other processes. */
  publishEvents(
    node: string,
    events: GpuEvent[],
    gpus: readonly { uuid: string; pciBusId?: string | null }[],
  ): void;
  /**
   * Resolves once every fleet message queued so far was handed to Redis (or dropped); null when
   * none is waiting. Agents' acks wait for it.
   */
  published(): Promise<void> | null;
  /** Tells the other processes about an acknowledgement made here. */
  publishAck(id: string, ack: NonNullable<Alert['acknowledged']>): void;
  /** Other live processes. */
  peers(): string[];
  /** Stops heartbeats, hands the lease back, closes the Redis connections. */
  close(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const log = opts.logger;
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  const ownerDeadMs = opts.ownerDeadMs ?? 5000;
  const maxPending = opts.maxPending ?? 50_000;
  const fleet = opts.fleet;

  const pub = await connectRedis(opts.url, log, 'pub');
  const clients: RedisClient[] = [pub];
  try {
    const sub = await connectRedis(opts.url, log, 'sub');
    clients.push(sub);
    const adapterSub = await connectRedis(opts.url, log, 'adapter-sub');
    clients.push(adapterSub);

    const dropped = new Counter({
      name: 'gpupulse_cluster_messages_dropped_total',
      help: 'Fleet messages to other processes dropped (queue full or Redis unreachable); peers resync on the next full state',
      labelNames: ['reason'],
      registers: [opts.registry],
    });
    const published = new Counter({
      name: 'gpupulse_cluster_messages_published_total',
      help: 'Fleet messages published to the other processes',
      registers: [opts.registry],
    });
    const received = new Counter({
      name: 'gpupulse_cluster_messages_received_total',
      help: 'Fleet messages applied from other processes',
      registers: [opts.registry],
    });

    // ---- publishing (batched) ----
    let pending: FleetMessage[] = [];
    /** Settles when `pending` (as it is now) has been published. */
    let waiting: { promise: Promise<void>; resolve: () => void } | null = null;
    let flushTimer: NodeJS.Timeout | null = null;
    let needFull = false;
    let closed = false;
    const enqueue = (m: FleetMessage) => {
      if (closed) return;
      if (pending.length >= maxPending) {
        dropped.inc({ reason: 'queue_full' });
        needFull = true;
        return;
      }
      pending.push(m);
      if (flushTimer === null) {
        flushTimer = setTimeout(flush, 10);
        flushTimer.unref();
      }
    };
    const flush = () => {
      flushTimer = null;
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      const done = waiting;
      waiting = null;
      if (!pub.isReady) {
        // Not queued for later (node-redis's offline queue is unbounded): dropped, counted, and
        // every node's full state is sent once Redis is back.
        dropped.inc({ reason: 'redis_down' }, batch.length);
        needFull = true;
        done?.resolve();
        return;
      }
      const env: Envelope = { from: id, m: batch };
      pub.publish(FLEET_CHANNEL, JSON.stringify(env)).then(
        () => {
          done?.resolve();
          published.inc(batch.length);
          if (needFull) {
            // Something of ours was lost: send every node's full state so the replicas converge.
            needFull = false;
            for (const f of fleet.fullState()) enqueue(f);
          }
        },
        (err: unknown) => {
          done?.resolve();
          dropped.inc({ reason: 'redis_error' }, batch.length);
          needFull = true;
          log.debug({ err: (err as Error).message }, 'fleet publish failed');
        },
      );
    };
    fleet.publish = enqueue;

    // ---- receiving ----
    const lastHeard = new Map<string, number>();
    await sub.subscribe(FLEET_CHANNEL, (raw) => {
      let env: Envelope;
      try {
        env = JSON.parse(raw) as Envelope;
      } catch {
        return;
      }
      if (env.from === id || !Array.isArray(env.m)) return;
      if (!lastHeard.has(env.from)) log.info({ peer: env.from }, 'cluster: a peer process joined');
      lastHeard.set(env.from, Date.now());
      for (const m of env.m) {
        try {
          if (m.t === 'hello') {
            for (const f of fleet.fullState()) enqueue(f);
          } else if (m.t === 'e') {
            opts.onRemoteEvents(m.n, m.ev, m.gpus);
          } else if (m.t === 'ack') {
            opts.onRemoteAck(m.id, m.ack);
          } else if (m.t !== 'h') {
            fleet.applyRemote(env.from, m);
          }
          received.inc();
        } catch (err) {
          log.error({ err, peer: env.from, t: m.t }, 'cluster: applying a fleet message failed');
        }
      }
    });
    // After a lost subscription, messages were missed: ask every owner for its full state.
    let subDown = false;
    sub.on('error', () => {
      subDown = true;
    });
    sub.on('ready', () => {
      if (subDown) enqueue({ t: 'hello' });
      subDown = false;
    });
    enqueue({ t: 'hello' });

    const beat = setInterval(() => {
      enqueue({ t: 'h' });
      const now = Date.now();
      for (const [peer, at] of lastHeard) {
        if (now - at < ownerDeadMs) continue;
        lastHeard.delete(peer);
        const recent = fleet.takeRecent(peer, at - (opts.tailMs ?? 5000));
        const n = fleet.ownerGone(peer);
        try {
          opts.onOwnerGone?.(peer, recent);
        } catch (err) {
          log.error({ err, peer }, 'cluster: handling a gone peer failed');
        }
        log.warn(
          { peer, nodes: n, silentMs: now - at },
          'cluster: a peer process went silent; its nodes are offline until their agents reconnect',
        );
      }
    }, heartbeatMs);
    beat.unref();

    new Gauge({
      name: 'gpupulse_cluster_nodes',
      help: 'Nodes by where their agent is connected: this process (local) or another (remote)',
      labelNames: ['where'],
      registers: [opts.registry],
      collect() {
        this.set({ where: 'local' }, fleet.localNodes());
        this.set({ where: 'remote' }, fleet.remoteNodes());
      },
    });
    new Gauge({
      name: 'gpupulse_cluster_peers',
      help: 'Other server processes heard from within the owner timeout',
      registers: [opts.registry],
      collect() {
        this.set(lastHeard.size);
      },
    });

    const lease = new RedisLease({
      redis: pub,
      name: 'singleton',
      owner: id,
      ttlMs: opts.leaseTtlMs,
      renewMs: opts.leaseRenewMs,
      logger: log,
    });
    new Gauge({
      name: 'gpupulse_cluster_lease_held',
      help: '1 while this process holds the singleton lease (usage points, rollups, alert notifications)',
      registers: [opts.registry],
      collect() {
        this.set(lease.held() ? 1 : 0);
      },
    });
    await lease.start();

    const adapter = createAdapter(pub, adapterSub, { key: 'gpupulse:sio' });
    log.info({ redis: redactUrl(opts.url), id, lease: lease.held() }, 'cluster: joined over Redis');

    return {
      id,
      lease,
      redis: pub,
      adapter,
      publishEvents(node, events, gpus) {
        enqueue({
          t: 'e',
          n: node,
          ev: events,
          gpus: gpus.map((g) => ({ uuid: g.uuid, pciBusId: g.pciBusId ?? null })),
        });
      },
      published() {
        if (pending.length === 0 || !pub.isReady) return null;
        if (!waiting) {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => {
            resolve = r;
          });
          waiting = { promise, resolve };
        }
        return waiting.promise;
      },
      publishAck(alertId, ack) {
        enqueue({ t: 'ack', id: alertId, ack });
      },
      peers: () => [...lastHeard.keys()],
      async close() {
        clearInterval(beat);
        if (flushTimer) clearTimeout(flushTimer);
        flush();
        waiting?.resolve();
        closed = true;
        await lease.close();
        for (const c of clients.reverse()) await closeRedis(c);
      },
    };
  } catch (err) {
    for (const c of clients) await closeRedis(c);
    throw err;
  }
}
