import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  AGENT_NAMESPACE,
  type AlertsList,
  DASHBOARD_NAMESPACE,
  type Health,
  LIMITS,
  type NodeView,
  PROTOCOL_VERSION,
  type StorageInfo,
} from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Server as SocketIOServer } from 'socket.io';
import { type AlertsConfig, buildAlertsConfig, parseWebhookList } from './alerts/config.ts';
import { AlertService, alertsQuery } from './alerts/service.ts';
import { type Clock, systemClock } from './clock.ts';
import { loadConfig, type ServerConfig } from './config.ts';
import { type AttributeFn, attributionFromFn, UNASSIGNED } from './fleet/attribution.ts';
import { FleetState } from './fleet/fleet-state.ts';
import { InfluxBackend, MemoryBackend } from './history/query-backend.ts';
import { createProjectsApi } from './http/api-projects.ts';
import { createStaticHandler } from './http/static-files.ts';
import { silentLogger } from './logger.ts';
import { createServerMetrics } from './metrics.ts';
import { createProjectAttribution } from './projects/attributor.ts';
import { ProjectsRegistry } from './projects/projects-registry.ts';
import { readGroupDb } from './projects/unix-groups.ts';
import { ensureRetentionPolicies, type TierPolicies } from './rollups/retention.ts';
import { RollupAggregator } from './rollups/rollup-aggregator.ts';
import { type AgentNamespace, setupAgentNamespace } from './socket/agent-namespace.ts';
import { createFrameParser } from './socket/frame-parser.ts';
import {
  DASHBOARD_ROOM,
  type DashboardNamespace,
  setupDashboardNamespace,
} from './socket/dashboard-namespace.ts';
import { InfluxStore } from './storage/influx-store.ts';
import { MemoryStore } from './storage/memory-store.ts';
import type { MetricStore } from './storage/metric-store.ts';
import { DiskSpool } from './storage/spool.ts';
import { WriteBuffer } from './storage/write-buffer.ts';
import { LiveUsage } from './usage/live-usage.ts';
import { SERVER_VERSION } from './version.ts';

export interface CreateServerOptions {
  /** Defaults: `loadConfig({})` (port 8080, no agent tokens …); given keys override them. */
  config?: Partial<ServerConfig>;
  /** Default: a new `MemoryStore`, closed with the server. A store passed in is NOT closed by `close()`. */
  store?: MetricStore;
  /** Default: silent. */
  logger?: Logger;
  /** Default: the system clock. */
  clock?: Clock;
  /** Attribution seam; default: the rules of the projects file (`config.projectsFile`). */
  attribute?: AttributeFn;
  /** Alert rules and webhooks (default: the built-in rules and `config.webhooks`; main.ts loads GPUPULSE_ALERTS). */
  alerts?: AlertsConfig;
}

export interface GpupulseServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  fleet: FleetState;
  store: MetricStore;
  buffer: WriteBuffer;
  registry: Registry;
  io: SocketIOServer;
  alerts: AlertService;
  /** The write buffer's disk spool (`<dataDir>/spool`); null with the memory store or when disabled. */
  spool: DiskSpool | null;
  /** The projects file in effect (hot-reloaded). */
  projects: ProjectsRegistry;
  /** Live per-project usage (computed on every tick). */
  usage: LiveUsage;
  /** Minute/hour rollups built from the samples received. */
  rollups: RollupAggregator;
  /** Retention policy per storage tier (InfluxDB 1.x; empty elsewhere). */
  retentionPolicies: TierPolicies;
  /** Sends a `fleet:delta` (and `projects:usage`) now (tests; the ticker does it every `deltaIntervalMs`). */
  tick(): void;
  health(): Health;
  /** Stops accepting, disconnects everyone, flushes the write buffer (bounded), closes an owned store. */
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'SAMEORIGIN',
};

function json(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

/** Builds and starts the server (HTTP + Socket.IO on one port). Resolves once it listens. */
export async function createServer(opts: CreateServerOptions = {}): Promise<GpupulseServer> {
  const config: ServerConfig = { ...loadConfig({}), ...opts.config };
  const logger = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  const ownsStore = !opts.store;
  const store: MetricStore = opts.store ?? new MemoryStore({ now: () => clock.now() });
  const startedAt = Date.now();

  const projects = new ProjectsRegistry({
    file: config.projectsFile,
    logger: logger.child({ component: 'projects' }),
    pollMs: config.projectsPollMs,
    readGroups: () => readGroupDb(config.groupFile, config.passwdFile),
    now: () => clock.now(),
  });
  projects.reload();
  const attribution = opts.attribute
    ? attributionFromFn(opts.attribute)
    : createProjectAttribution(() => ({ config: projects.current, groups: projects.groups }));
  let rollups: RollupAggregator | null = null;
  const fleet = new FleetState({
    clock,
    attribution,
    idleThresholdPercent: config.idleThresholdPercent,
    idleWindowMs: config.idleWindowMs,
    onSamples: (node, samples, intervalMs) => rollups?.ingest(node, samples, intervalMs),
    staleIntervals: config.staleIntervals,
    defaultIntervalMs: config.defaultAgentIntervalMs,
    offlineAfterMs: config.offlineAfterMs,
  });

  let buffer: WriteBuffer | null = null;
  let alerts: AlertService | null = null;
  const spool =
    config.spool.enabled && store.kind !== 'memory'
      ? new DiskSpool({
          dir: join(config.dataDir, 'spool'),
          maxBytes: config.spool.maxBytes,
          logger: logger.child({ component: 'spool' }),
          onDrop: (reason, n) => metrics.writeObserver.dropped?.(reason, n),
        })
      : null;
  const metrics = createServerMetrics({
    spool: () => (spool ? spool.stats : null),
    alertsFiring: () => alerts?.engine.firingByRule() ?? {},
    bufferSize: () => buffer?.buffered ?? 0,
    storageUp: () => store.info().ok,
    fleet: () => fleet.counts(),
    memoryStoreDropped: () => (store instanceof MemoryStore ? store.dropped : null),
  });
  buffer = new WriteBuffer({
    store,
    batchSize: config.writeBuffer.batchSize,
    flushIntervalMs: config.writeBuffer.flushIntervalMs,
    maxPoints: config.writeBuffer.maxPoints,
    spillPoints: config.writeBuffer.spillPoints,
    initialBackoffMs: config.writeBuffer.initialBackoffMs,
    maxBackoffMs: config.writeBuffer.maxBackoffMs,
    logger: logger.child({ component: 'write-buffer' }),
    observer: metrics.writeObserver,
    spool: spool ?? undefined,
  });
  const writeBuffer = buffer;
  writeBuffer.start();

  const retentionPolicies: TierPolicies =
    store instanceof InfluxStore
      ? await ensureRetentionPolicies(
          store,
          store.database,
          config.retention,
          logger.child({ component: 'retention' }),
        )
      : {};
  const institutionOf = (p: string) =>
    p === UNASSIGNED ? null : (projects.current.projects.get(p)?.institution ?? null);
  const rollupAggregator = new RollupAggregator({
    attribution,
    institutionOf,
    idleThresholdPercent: config.idleThresholdPercent,
    idleWindowMs: config.idleWindowMs,
    graceMs: config.rollupGraceMs,
    now: () => clock.now(),
    emit: (points) => writeBuffer.enqueue(points),
    rp: { '1m': retentionPolicies['1m'], '1h': retentionPolicies['1h'] },
  });
  rollups = rollupAggregator;
  const liveUsage = new LiveUsage({
    fleet,
    projects: () => projects.current,
    clock,
    sink: (points) => writeBuffer.enqueue(points),
    pointIntervalMs: config.projectUsageIntervalMs,
  });
  const projectsMeta = () => ({ ...projects.current.meta, configError: projects.error });
  const projectsApi = createProjectsApi({
    usage: () => liveUsage.latest(),
    meta: projectsMeta,
    history: {
      backend:
        store instanceof MemoryStore
          ? new MemoryBackend(store)
          : new InfluxBackend(store, store instanceof InfluxStore ? store.database : config.influx.database),
      policies: retentionPolicies,
      now: () => clock.now(),
      rollupGraceMs: config.rollupGraceMs,
    },
    logger: logger.child({ component: 'api' }),
  });

  const storageInfo = (): StorageInfo => store.info();
  const serveStatic = createStaticHandler(config.webDir);
  const httpLog = logger.child({ component: 'http' });

  let agents: { connected(): number } = { connected: () => 0 };
  let dashboards: { connected(): number; tick(): void; stop(): void } = {
    connected: () => 0,
    tick: () => {},
    stop: () => {},
  };

  const health = (): Health => {
    const storage = storageInfo();
    const counts = fleet.counts();
    return {
      status: storage.ok && storage.kind !== 'memory' ? 'ok' : 'degraded',
      version: SERVER_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      storage,
      agents: agents.connected(),
      dashboards: dashboards.connected(),
      nodes: counts.nodes,
      gpus: counts.gpus,
      projects: projects.status(),
    };
  };

  let publishAlerts: (list: AlertsList) => void = () => {};
  const alertService = new AlertService({
    config: opts.alerts ?? buildAlertsConfig({}, { webhooks: parseWebhookList(config.webhooks.join(',')) }),
    clock,
    logger: logger.child({ component: 'alerts' }),
    nodes: () => fleet.snapshot(),
    write: (points) => writeBuffer.enqueue(points),
    publish: (list) => publishAlerts(list),
    webhookObserver: metrics.webhookObserver,
    onChange: (changed) => metrics.alertsChanged(changed),
  });
  alerts = alertService;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    let pathname: string;
    let searchParams: URLSearchParams;
    try {
      const parsedUrl = new URL(req.url ?? '/', 'http://localhost');
      pathname = parsedUrl.pathname;
      searchParams = parsedUrl.searchParams;
    } catch {
      json(res, 400, { error: { code: 'VALIDATION', message: 'bad request URL' } });
      return;
    }
    const head = req.method === 'HEAD';
    const isApi = pathname === '/api' || pathname.startsWith('/api/');
    if (isApi || pathname === '/metrics') {
      if (req.method !== 'GET' && !head) {
        res.setHeader('allow', 'GET, HEAD');
        json(res, 405, { error: { code: 'VALIDATION', message: `method ${req.method} not allowed` } });
        return;
      }
    }
    if (pathname === '/api/v1/health') {
      json(res, 200, health(), head);
      return;
    }
    if (pathname === '/api/v1/fleet') {
      const body: { serverTime: number; storage: StorageInfo; nodes: NodeView[] } = {
        serverTime: clock.now(),
        storage: storageInfo(),
        nodes: fleet.snapshot(),
      };
      json(res, 200, body, head);
      return;
    }
    if (pathname === '/api/v1/alerts') {
      const { status, body } = alertsQuery(alertService, searchParams);
      json(res, status, body, head);
      return;
    }
    const processesPath = /^\/api\/v1\/nodes\/([^/]+)\/processes$/.exec(pathname);
    if (processesPath) {
      let node: string;
      try {
        node = decodeURIComponent(processesPath[1]!);
      } catch {
        json(
          res,
          400,
          { error: { code: 'VALIDATION', message: 'node name is not valid URL encoding' } },
          head,
        );
        return;
      }
      const processes = fleet.processDetails(node);
      if (processes === null) {
        json(
          res,
          404,
          { error: { code: 'NOT_FOUND', message: `no node named ${JSON.stringify(node)}` } },
          head,
        );
        return;
      }
      json(res, 200, { serverTime: clock.now(), node, processes }, head);
      return;
    }
    if (pathname === '/metrics') {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
      res.end(head ? undefined : text);
      return;
    }
    if (isApi && (await projectsApi(req, res, pathname, searchParams))) return;
    if (isApi) {
      json(res, 404, { error: { code: 'NOT_FOUND', message: `no API endpoint ${pathname}` } }, head);
      return;
    }
    // The raw path, not the URL-normalised one: `..` segments are refused, not silently resolved.
    await serveStatic(req, res, (req.url ?? '/').split(/[?#]/, 1)[0] ?? '/');
  };

  const httpServer = createHttpServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      httpLog.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) json(res, 500, { error: { code: 'INTERNAL', message: 'internal server error' } });
      else res.destroy();
    });
  });

  const io = new SocketIOServer(httpServer, {
    // Above the message limit: an oversized report reaches its handler and is answered TOO_LARGE;
    // the parser measures each frame and turns undecodable ones into a VALIDATION answer.
    maxHttpBufferSize: LIMITS.maxTransportBytes,
    parser: createFrameParser({ exactAbove: LIMITS.maxMessageBytes }),
    serveClient: false,
    // Same-origin dashboards need no CORS; agents are not browsers.
  });

  agents = setupAgentNamespace({
    nsp: io.of(AGENT_NAMESPACE) as unknown as AgentNamespace,
    agentTokens: config.agentTokens,
    fleet,
    buffer: writeBuffer,
    clock,
    logger: logger.child({ component: 'agents' }),
    metrics,
    clockSkewMs: config.clockSkewMs,
    sampleWindow: { maxAgeMs: config.sampleMaxAgeMs, maxAheadMs: config.sampleMaxAheadMs },
    onGpuEvents: (node, events, gpus) => alertService.recordEvents(node, events, gpus),
  });
  dashboards = setupDashboardNamespace({
    nsp: io.of(DASHBOARD_NAMESPACE) as unknown as DashboardNamespace,
    fleet,
    clock,
    logger: logger.child({ component: 'dashboards' }),
    metrics,
    storageInfo,
    deltaIntervalMs: config.deltaIntervalMs,
    deltaPhaseMs: config.deltaPhaseMs,
    intervalMs: config.defaultAgentIntervalMs,
    alertsSnapshot: () => alertService.snapshot(),
    projects: { meta: projectsMeta, latest: () => liveUsage.latest(), tick: () => liveUsage.update() },
  });
  projects.onChange(() => {
    fleet.reattribute();
    io.of(DASHBOARD_NAMESPACE).to(DASHBOARD_ROOM).emit('projects:meta', projectsMeta());
  });
  projects.start();
  const rollupTimer = setInterval(() => rollupAggregator.flush(), 5000);
  rollupTimer.unref();
  publishAlerts = (list) => io.of(DASHBOARD_NAMESPACE).to(DASHBOARD_ROOM).emit('alerts:changed', list);

  // The 1 s ticker: node statuses, then alert rules over the fresh statuses.
  const sweeper = setInterval(() => {
    fleet.sweep();
    alertService.tick();
  }, config.sweepIntervalMs);
  sweeper.unref();
  // Keep storage health fresh when no writes happen.
  const pinger = setInterval(() => {
    if (writeBuffer.buffered === 0) void store.ping();
  }, 5000);
  pinger.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      const onListen = () => {
        httpServer.off('error', reject);
        resolve();
      };
      if (config.host) httpServer.listen(config.port, config.host, onListen);
      else httpServer.listen(config.port, onListen);
    });
  } catch (err) {
    clearInterval(sweeper);
    clearInterval(pinger);
    clearInterval(rollupTimer);
    projects.close();
    dashboards.stop();
    await alertService.close();
    await writeBuffer.close(0);
    io.close();
    if (ownsStore) await store.close();
    throw err;
  }
  const port = (httpServer.address() as AddressInfo).port;
  const host = !config.host || config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | null = null;
  return {
    port,
    url,
    fleet,
    store,
    buffer: writeBuffer,
    registry: metrics.registry,
    io,
    alerts: alertService,
    spool,
    projects,
    usage: liveUsage,
    rollups: rollupAggregator,
    retentionPolicies,
    tick: () => dashboards.tick(),
    health,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        clearInterval(pinger);
        dashboards.stop();
        await new Promise<void>((resolve) => {
          io.close(() => resolve());
          httpServer.closeAllConnections();
        });
        await alertService.close();
        clearInterval(rollupTimer);
        projects.close();
        // The minute and hour in progress are written as they are (a restart loses the rest).
        rollupAggregator.flush(clock.now(), true);
        await writeBuffer.close();
        if (ownsStore) await store.close();
      })();
      return closing;
    },
  };
}
