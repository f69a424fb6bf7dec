import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import {
  AGENT_NAMESPACE,
  type Alert,
  DASHBOARD_NAMESPACE,
  type Health,
  LIMITS,
  PROTOCOL_VERSION,
  type StorageInfo,
  type WhoAmI,
} from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Server as SocketIOServer } from 'socket.io';
import { AccessRegistry, AddressList, findBySecret } from './access/access-file.ts';
import { createAuthRoutes } from './access/auth-routes.ts';
import { type CredentialSource, peerAddress, type Resolution, resolveRequest } from './access/principal.ts';
import { redactAlerts, redactNodes, redactProcesses } from './access/redact.ts';
import { type Principal, roleAtLeast } from './access/roles.ts';
import {
  clearSessionCookie,
  parseCookies,
  SESSION_COOKIE,
  SessionSigner,
  setSessionCookie,
} from './access/sessions.ts';
import { PeriodUsageCache } from './accounting/period-usage.ts';
import {
  type AlertsConfig,
  AlertsConfigError,
  buildAlertsConfig,
  loadAlertsFile,
  parseWebhookList,
} from './alerts/config.ts';
import { AlertService, alertsQuery } from './alerts/service.ts';
import { type Clock, systemClock } from './clock.ts';
import { AlertsOnce } from './cluster/alerts-once.ts';
import { type Cluster, startCluster } from './cluster/cluster.ts';
import { LocalLease, type SingletonLease } from './cluster/lease.ts';
import { ReplicatedFleet } from './cluster/replicated-fleet.ts';
import { loadConfig, type ServerConfig } from './config.ts';
import { type AttributeFn, attributionFromFn, UNASSIGNED } from './fleet/attribution.ts';
import { FleetState } from './fleet/fleet-state.ts';
import type { HistoryDeps } from './history/history-api.ts';
import { ApiError } from './history/history-api.ts';
import { InfluxBackend, MemoryBackend } from './history/query-backend.ts';
import { projectsRoutes } from './http/api-projects.ts';
import { createRouter, HttpError, type Route, sendError, sendJson } from './http/routes.ts';
import { createHttpListener, isAllowedOrigin, securityHeaders } from './http/security.ts';
import { createStaticHandler } from './http/static-files.ts';
import { silentLogger } from './logger.ts';
import { type Mailer, mailMetrics, SmtpMailer } from './mail/mailer.ts';
import { createServerMetrics } from './metrics.ts';
import { createNudgeService, type NudgeService } from './nudges/service.ts';
import { createProjectAttribution } from './projects/attributor.ts';
import { ProjectsRegistry } from './projects/projects-registry.ts';
import { readGroupDb } from './projects/unix-groups.ts';
import { ReportDelivery, type ReportMailer } from './reports/delivery.ts';
import { nudgeReader } from './reports/nudge-summary.ts';
import { chromiumPdfRenderer, type PdfRenderer } from './reports/pdf.ts';
import { reportRoutes } from './reports/routes.ts';
import { enrichUsage } from './reports/usage-enrich.ts';
import { ensureRetentionPolicies, type TierPolicies } from './rollups/retention.ts';
import { RollupAggregator } from './rollups/rollup-aggregator.ts';
import { OncePerInterval } from './socket/agent-auth.ts';
import { type AgentNamespace, setupAgentNamespace } from './socket/agent-namespace.ts';
import { type DashboardNamespace, setupDashboardNamespace } from './socket/dashboard-namespace.ts';
import { createFrameParser } from './socket/frame-parser.ts';
import { InfluxStore } from './storage/influx-store.ts';
import { WriteJournal } from './storage/journal.ts';
import { MemoryStore } from './storage/memory-store.ts';
import { type MetricPoint, type MetricStore, StoreQueryError } from './storage/metric-store.ts';
import { alertPoint, samplePoints } from './storage/schema.ts';
import { DiskSpool } from './storage/spool.ts';
import { WriteBuffer } from './storage/write-buffer.ts';
import { LiveUsage } from './usage/live-usage.ts';
import { SERVER_VERSION } from './version.ts';

export interface CreateServerOptions {
  /** Defaults: `loadConfig({})` (port 8080, no agent tokens …); given keys override them. */
  config?: Partial<ServerConfig>;
  /** Default: a new `MemoryStore`, closed with the server. A store passed in is NOT closed by `close()` (unless also in `closeAlso`). */
  store?: MetricStore;
  /** Default: silent. */
  logger?: Logger;
  /** Default: the system clock. */
  clock?: Clock;
  /** Attribution seam; default: the rules of the projects file (`config.projectsFile`). */
  attribute?: AttributeFn;
  /** Alert rules and webhooks (default: the built-in rules and `config.webhooks`; main.ts loads GPUPULSE_ALERTS). */
  alerts?: AlertsConfig;
  /** Monthly report e-mails go through this mailer (default: none, no delivery). */
  mailer?: ReportMailer;
  /** PDF of reports (default: headless Chromium at `GPUPULSE_CHROMIUM` or /usr/bin/chromium). */
  pdf?: PdfRenderer;
  /**
   * Closed by `close()` (and by a failed start) after everything the server started, in this
   * order — main.ts hands over the store it opened and the managed influxd, so one ordered list
   * shuts the whole process down.
   */
  closeAlso?: ReadonlyArray<{ name: string; close: () => unknown }>;
}

/** A route as the table declares it (for tests and docs). */
export interface RouteInfo {
  path: string;
  methods: readonly string[];
  role: string;
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
  /** The access file in effect (hot-reloaded). */
  access: AccessRegistry;
  /** The HTTP route table: every route with its methods and least role. */
  routes: readonly RouteInfo[];
  /** Live per-project usage (computed on every tick). */
  usage: LiveUsage;
  /** Nudges of idle-held GPUs (server/README.md "Nudges"). */
  nudges: NudgeService;
  /** The SMTP mailer (`GPUPULSE_SMTP_URL`; `configured` false without it). */
  mailer: Mailer;
  /** Minute/hour rollups built from the samples received. */
  rollups: RollupAggregator;
  /** Month-to-date GPU-hours per project (fair share in `usage`), refreshed every minute. */
  periodUsage: PeriodUsageCache;
  /** Monthly report e-mails (null without a mailer). */
  reportDelivery: ReportDelivery | null;
  /**
   * Who does singleton work (usage points, rollups, alert notifications, nudges, monthly
   * reports): always held by a single process; with `GPUPULSE_REDIS_URL` a lease in Redis.
   */
  lease: SingletonLease;
  /** Scale-out over Redis; null without `GPUPULSE_REDIS_URL`. */
  cluster: Cluster | null;
  /** Retention policy per storage tier (InfluxDB 1.x; empty elsewhere). */
  retentionPolicies: TierPolicies;
  /** Sends a `fleet:delta` (and `projects:usage`) now (tests; the ticker does it every `deltaIntervalMs`). */
  tick(): void;
  health(): Health;
  /** Stops accepting, disconnects everyone, flushes the write buffer (bounded), closes an owned store. */
  close(): Promise<void>;
}

/** Things to close, in the reverse order they were started. */
class Closers {
  private readonly list: Array<{ name: string; close: () => unknown }> = [];
  constructor(private readonly log: Logger) {}
  add(name: string, close: () => unknown): void {
    this.list.push({ name, close });
  }
  async closeAll(): Promise<void> {
    while (this.list.length) {
      const c = this.list.pop()!;
      try {
        await c.close();
      } catch (err) {
        this.log.error({ err, what: c.name }, 'close failed');
      }
    }
  }
}

/** Builds and starts the server (HTTP + Socket.IO on one port). Resolves once it listens. */
export async function createServer(opts: CreateServerOptions = {}): Promise<GpupulseServer> {
  const config: ServerConfig = { ...loadConfig({}), ...opts.config };
  const logger = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  const store: MetricStore = opts.store ?? new MemoryStore({ now: () => clock.now() });
  const startedAt = Date.now();
  const closers = new Closers(logger);
  for (const c of [...(opts.closeAlso ?? [])].reverse()) closers.add(c.name, c.close);
  if (!opts.store) closers.add('store', () => store.close());
  const audit = logger.child({ component: 'audit' });
  const secure = config.tls !== null || (config.publicUrl?.startsWith('https:') ?? false);

  // Access first: a broken access file must stop the server before it opens anything.
  const access = new AccessRegistry({
    file: config.accessFile,
    logger: logger.child({ component: 'access' }),
    pollMs: config.accessPollMs,
  });
  if (config.accessFile) {
    access.reload();
    if (access.error) {
      await closers.closeAll();
      throw new Error(`GPUPULSE_ACCESS_FILE: ${access.error}`);
    }
  }
  const signer = SessionSigner.open(config.dataDir);
  const metricsFrom = new AddressList(config.metricsFrom);
  const authorize = (src: CredentialSource): Resolution => resolveRequest(src, access.current, signer);

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
  // Closures below may name objects declared further down: they run only once the server listens.
  const fleetOptions: ConstructorParameters<typeof FleetState>[0] = {
    clock,
    attribution,
    idleThresholdPercent: config.idleThresholdPercent,
    idleWindowMs: config.idleWindowMs,
    // Rollups of the whole fleet by the lease holder (in a cluster it gets every process's samples).
    onSamples: (node, samples, intervalMs) => {
      if (lease.held()) rollups.ingest(node, samples, intervalMs);
    },
    staleIntervals: config.staleIntervals,
    defaultIntervalMs: config.defaultAgentIntervalMs,
    offlineAfterMs: config.offlineAfterMs,
  };
  // With Redis: this process's agents' nodes plus a replica of the other processes' nodes.
  const replicated = config.redisUrl ? new ReplicatedFleet(fleetOptions) : null;
  const fleet: FleetState = replicated ?? new FleetState(fleetOptions);

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
    journal: () => writeBuffer.journal?.stats ?? null,
    alertsFiring: () => alerts.engine.firingByRule(),
    bufferSize: () => writeBuffer.buffered,
    storageUp: () => store.info().ok,
    fleet: () => fleet.counts(),
    memoryStoreDropped: () => (store instanceof MemoryStore ? store.dropped : null),
    storageFieldsDropped: () => (store instanceof InfluxStore ? store.lineStats.fieldsDropped : 0),
    // Read on scrape only, after start-up (the aggregator is made further down).
    rollupLate: () => ({ merged: rollups.stats.lateMerged, dropped: rollups.stats.lateDropped }),
  });
  const writeBuffer = new WriteBuffer({
    store,
    batchSize: config.writeBuffer.batchSize,
    flushIntervalMs: config.writeBuffer.flushIntervalMs,
    maxPoints: config.writeBuffer.maxPoints,
    spillPoints: config.writeBuffer.spillPoints,
    initialBackoffMs: config.writeBuffer.initialBackoffMs,
    maxBackoffMs: config.writeBuffer.maxBackoffMs,
    retryAfterMs: config.writeBuffer.retryAfterMs,
    maxRetryAfterMs: config.writeBuffer.maxRetryAfterMs,
    logger: logger.child({ component: 'write-buffer' }),
    observer: metrics.writeObserver,
    spool: spool ?? undefined,
    // With the spool: acked points are on disk before the ack (survive a killed server).
    journal: spool
      ? new WriteJournal({
          dir: join(config.dataDir, 'journal'),
          logger: logger.child({ component: 'journal' }),
        })
      : undefined,
  });
  writeBuffer.start();
  let listening = false;
  closers.add('write buffer', () => writeBuffer.close(listening ? undefined : 0));

  let cluster: Cluster | null = null;
  if (replicated && config.redisUrl) {
    try {
      cluster = await startCluster({
        url: config.redisUrl,
        fleet: replicated,
        logger: logger.child({ component: 'cluster' }),
        registry: metrics.registry,
        onRemoteEvents: (node, events, gpus) => alerts.recordEvents(node, events, gpus),
        onRemoteAck: (id, ack) => alerts.applyAcknowledgement(id, ack),
        // A dead process may have acked samples it had not stored yet (its write buffer holds up
        // to a second): every survivor writes that process's last seconds again (same series and
        // time: InfluxDB keeps one point).
        onOwnerGone: (peer, recent) => {
          const points: MetricPoint[] = [];
          for (const b of recent)
            for (const s of b.samples)
              for (const p of samplePoints(b.node, s.sample, s.processes, fleet.attributeFn)) points.push(p);
          if (points.length > 0) writeBuffer.enqueue(points);
          logger
            .child({ component: 'cluster' })
            .info(
              { peer, samples: recent.reduce((n, b) => n + b.samples.length, 0), points: points.length },
              'cluster: wrote the gone process’s last seconds again',
            );
        },
      });
    } catch (err) {
      await closers.closeAll();
      throw new Error(`GPUPULSE_REDIS_URL: cannot join the cluster: ${(err as Error).message}`);
    }
    const c = cluster;
    closers.add('cluster', () => c.close());
  }
  const lease: SingletonLease = cluster?.lease ?? new LocalLease();

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
  const rollups = new RollupAggregator({
    attribution,
    institutionOf,
    idleThresholdPercent: config.idleThresholdPercent,
    idleWindowMs: config.idleWindowMs,
    graceMs: config.rollupGraceMs,
    now: () => clock.now(),
    emit: (points) => writeBuffer.enqueue(points),
    rp: { '1m': retentionPolicies['1m'], '1h': retentionPolicies['1h'] },
    // Late samples are merged into the stored rollups; the hour tier is rebuilt after a restart.
    reader: store,
    database: store instanceof InfluxStore ? store.database : config.influx.database,
    progress: () => {
      const st = writeBuffer.stats;
      const done = st.pointsWritten + st.pointsRejected + st.pointsDroppedOverflow + st.pointsDroppedShutdown;
      return { done, total: done + writeBuffer.buffered + writeBuffer.spooled };
    },
    onError: (err, what) =>
      logger.child({ component: 'rollups' }).warn({ err: (err as Error).message ?? String(err) }, what),
  });
  const rollupsLog = logger.child({ component: 'rollups' });
  const rebuildRollups = () =>
    void rollups.rebuild().then(
      (r) => rollupsLog.info(r, 'rollups: hour tier rebuilt from the 1m tier'),
      (err: unknown) =>
        rollupsLog.warn({ err: (err as Error).message }, 'rollups: could not rebuild the hour tier'),
    );
  // In a cluster, by the process that takes the lease (when it takes it).
  if (lease.held()) rebuildRollups();
  lease.onChange((held) => {
    if (held) rebuildRollups();
  });
  // The minute and hour in progress are written as they are (a restart loses the rest).
  closers.add('rollups', () => {
    if (lease.held()) rollups.flush(clock.now(), true);
  });
  // Usage, fair share and reports read the rollup tiers through one query backend.
  const usageHistory: HistoryDeps = {
    backend:
      store instanceof MemoryStore
        ? new MemoryBackend(store)
        : new InfluxBackend(store, store instanceof InfluxStore ? store.database : config.influx.database),
    policies: retentionPolicies,
    now: () => clock.now(),
    rollupGraceMs: config.rollupGraceMs,
  };
  const periodUsage = new PeriodUsageCache({
    history: usageHistory,
    now: () => clock.now(),
    onError: (err) =>
      logger
        .child({ component: 'share' })
        .warn({ err: (err as Error).message }, 'month-to-date usage not read'),
  });
  periodUsage.start();
  closers.add('share', () => periodUsage.stop());
  const liveUsage = new LiveUsage({
    periodUsage: () => periodUsage.latest(),
    fleet,
    projects: () => projects.current,
    clock,
    // Every process computes live usage for its own dashboards; the lease holder stores it.
    sink: (points) => {
      if (lease.held()) writeBuffer.enqueue(points);
    },
    pointIntervalMs: config.projectUsageIntervalMs,
  });
  const projectsMeta = () => ({ ...projects.current.meta, configError: projects.error });
  const countGpus = () => {
    let n = 0;
    fleet.forEachGpu(() => {
      n++;
    });
    return n;
  };
  const reportPdf =
    opts.pdf ?? chromiumPdfRenderer({ chromium: process.env.GPUPULSE_CHROMIUM || '/usr/bin/chromium' });
  const reportDeps = {
    history: usageHistory,
    projects: () => projects.current,
    centreGpus: countGpus,
    now: () => clock.now(),
    pdf: reportPdf,
    // Nudges of the period from the stored nudge records (same retention policy as the nudges).
    nudges: nudgeReader(store, retentionPolicies['1h']),
  };
  // Last month's reports e-mailed from the 1st, once (claims in the data dir; the lease holder
  // only), through `opts.mailer` or the server's SMTP mailer; started once the server listens.
  let reportMailer: ReportMailer | null = opts.mailer ?? null;
  const reportDelivery =
    opts.mailer || config.smtp.url
      ? new ReportDelivery({
          reports: reportDeps,
          pdf: reportPdf,
          send: (m) => (reportMailer ? reportMailer.send(m) : Promise.resolve('not-configured')),
          dataDir: config.dataDir,
          lease,
          logger: logger.child({ component: 'reports' }),
          publicUrl: config.publicUrl,
        })
      : null;
  if (reportDelivery) closers.add('report delivery', () => reportDelivery.stop());
  const storageInfo = (): StorageInfo => store.info();

  // In a cluster every process evaluates the rules; the lease holder notifies, once per change.
  const alertsOnce = cluster
    ? new AlertsOnce({
        redis: cluster.redis,
        lease,
        alerts: () => alerts,
        write: (list) => writeBuffer.enqueue(list.map(alertPoint)),
        publish: (list) => dash.publishAlerts({ serverTime: clock.now(), alerts: list }),
        logger: logger.child({ component: 'alerts' }),
      })
    : null;
  const alertsConfig =
    opts.alerts ?? buildAlertsConfig({}, { webhooks: parseWebhookList(config.webhooks.join(',')) });
  const alerts: AlertService = new AlertService({
    config: alertsConfig,
    clock,
    logger: logger.child({ component: 'alerts' }),
    nodes: () => fleet.snapshot(),
    write: (points) => writeBuffer.enqueue(points),
    publish: (list) => dash.publishAlerts(list),
    webhookObserver: metrics.webhookObserver,
    onChange: (changed) => metrics.alertsChanged(changed),
    ...(alertsOnce
      ? {
          active: () => lease.held(),
          gate: alertsOnce.gate,
          acknowledged: (id: string, ack: NonNullable<Alert['acknowledged']>) => cluster?.publishAck(id, ack),
        }
      : {}),
  });
  closers.add('alerts', () => alerts.close());

  const mailer = new SmtpMailer({
    url: config.smtp.url,
    from: config.smtp.from,
    logger: logger.child({ component: 'mail' }),
    observer: mailMetrics(metrics.registry),
  });
  closers.add('mailer', () => mailer.close());
  let baseUrl = config.publicUrl ?? '';
  const nudgesLog = logger.child({ component: 'nudges' });
  const nudges = createNudgeService({
    clock,
    projects: () => projects.current,
    gpus: (fn) => fleet.forEachGpu(fn),
    mailer,
    webhookTargets: alertsConfig.webhooks,
    ops: (alert) => {
      alerts.webhooks.notify([alert]);
      return alerts.webhooks.size;
    },
    dataDir: config.dataDir,
    baseUrl: () => baseUrl,
    write: (points) => writeBuffer.enqueue(points),
    store,
    rp: retentionPolicies['1h'],
    registry: metrics.registry,
    projectIdleToday: (p) =>
      liveUsage.latest().projects.find((x) => x.project === p)?.idleGpuHoursToday ?? null,
    projectShare: (p) => liveUsage.latest().projects.find((x) => x.project === p)?.share ?? null,
    logger: nudgesLog,
  });
  closers.add('nudges', () => nudges.close());
  void nudges.restore().then(
    (n) => n > 0 && nudgesLog.info({ records: n }, 'nudges: recent records read back'),
    (err: unknown) => nudgesLog.warn({ err: (err as Error).message }, 'nudges: could not read records back'),
  );
  if (alertsOnce) {
    const once = alertsOnce;
    const takeover = () =>
      void once.takeover().catch((err: unknown) => logger.error({ err }, 'alerts: lease takeover failed'));
    if (lease.held()) takeover();
    lease.onChange((held) => {
      if (held) takeover();
    });
  }

  // ---- HTTP ----

  const health = (): Health => {
    const storage = storageInfo();
    const counts = fleet.counts();
    return {
      status: storage.ok && storage.kind !== 'memory' ? 'ok' : 'degraded',
      version: SERVER_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      storage,
      agents: agentsNs.connected(),
      dashboards: dash.connected(),
      nodes: counts.nodes,
      gpus: counts.gpus,
      projects: projects.status(),
    };
  };
  const actor = (p: Principal) => ({
    who: p.name ?? p.user ?? 'anonymous',
    user: p.user,
    via: p.via,
    role: p.role,
  });

  const routes: Route[] = [
    {
      path: '/api/v1/health',
      methods: ['GET'],
      role: 'none',
      // Role `none` learns only that the server is up: no counts, paths or storage details.
      handle: ({ res, head, principal }) => {
        const h = health();
        sendJson(
          res,
          200,
          roleAtLeast(principal.role, 'display')
            ? h
            : { status: h.status, version: h.version, protocolVersion: h.protocolVersion },
          head,
        );
      },
    },
    {
      path: '/api/v1/me',
      methods: ['GET'],
      role: 'none',
      handle: ({ res, head, principal }) => {
        const me: WhoAmI = { ...principal, loginAvailable: access.current.oidc !== null };
        sendJson(res, 200, me, head);
      },
    },
    {
      path: '/api/v1/fleet',
      methods: ['GET'],
      role: 'display',
      handle: ({ res, head, principal }) =>
        sendJson(
          res,
          200,
          {
            serverTime: clock.now(),
            storage: storageInfo(),
            nodes: redactNodes(fleet.snapshot(), principal.role),
          },
          head,
        ),
    },
    {
      path: '/api/v1/alerts',
      methods: ['GET'],
      role: 'display',
      handle: ({ res, head, query, principal }) => {
        const { status, body } = alertsQuery(alerts, query);
        sendJson(
          res,
          status,
          status === 200 ? redactAlerts(body as ReturnType<AlertService['list']>, principal.role) : body,
          head,
        );
      },
    },
    {
      path: '/api/v1/alerts/:id/ack',
      methods: ['POST'],
      role: 'admin',
      handle: async ({ req, res, params, principal }) => {
        const body = await readJsonBody(req);
        const silence = body.silence ?? null;
        const silenceMs = silence === null ? null : parseSilence(silence);
        const alert = alerts.acknowledge(params.id!, principal.name ?? principal.user ?? 'admin', silenceMs);
        if (!alert)
          throw new HttpError(
            404,
            'NOT_FOUND',
            `no firing or recent alert with id ${JSON.stringify(params.id)}`,
          );
        audit.info(
          {
            ...actor(principal),
            action: 'alert.ack',
            alert: alert.id,
            rule: alert.rule,
            node: alert.node,
            silenceMs,
            at: clock.now(),
          },
          `alert ${alert.id} acknowledged${silenceMs ? ` and silenced for ${silence}` : ''}`,
        );
        sendJson(res, 200, alert);
      },
    },
    {
      path: '/api/v1/nodes/:name/processes',
      methods: ['GET'],
      role: 'viewer',
      handle: ({ res, head, params, principal }) => {
        const node = params.name!;
        const processes = fleet.processDetails(node);
        if (processes === null)
          throw new HttpError(404, 'NOT_FOUND', `no node named ${JSON.stringify(node)}`);
        sendJson(
          res,
          200,
          { serverTime: clock.now(), node, processes: redactProcesses(processes, principal) },
          head,
        );
      },
    },
    {
      path: '/api/v1/admin/reload',
      methods: ['POST'],
      role: 'admin',
      handle: ({ res, principal }) => {
        const reloadedProjects = projects.reload();
        const reloadedAccess = access.reload();
        const alertsResult: {
          file: string | null;
          reloaded: boolean;
          rules?: number;
          error: string | null;
          note?: string;
        } = { file: config.alertsFile, reloaded: false, error: null };
        if (config.alertsFile) {
          try {
            const next = loadAlertsFile(config.alertsFile, {
              webhooks: parseWebhookList(config.webhooks.join(',')),
            });
            alerts.setRules(next.rules);
            alertsResult.reloaded = true;
            alertsResult.rules = alerts.engine.ruleIds.length;
            alertsResult.note = 'rules reloaded; webhooks are read at start';
          } catch (err) {
            alertsResult.error = err instanceof AlertsConfigError ? err.message : (err as Error).message;
          }
        }
        const result = {
          projects: { file: projects.file, reloaded: reloadedProjects, error: projects.error },
          access: { file: access.file, reloaded: reloadedAccess, error: access.error },
          alerts: alertsResult,
        };
        audit.info(
          { ...actor(principal), action: 'admin.reload', result, at: clock.now() },
          'files reloaded',
        );
        sendJson(res, 200, result);
      },
    },
    {
      path: '/metrics',
      methods: ['GET'],
      role: 'display',
      // Prometheus scrapers often cannot send tokens: GPUPULSE_METRICS_FROM admits them by address.
      admit: ({ req }) => metricsFrom.has(req.socket.remoteAddress),
      handle: async ({ res, head }) => {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(head ? undefined : text);
      },
    },
    ...nudges.routes,
    ...projectsRoutes({
      usage: () => liveUsage.latest(),
      meta: projectsMeta,
      history: usageHistory,
      enrichUsage: (u) => enrichUsage(u, projects.current, countGpus()),
    }),
    ...reportRoutes(reportDeps),
  ];
  const authRoutes = createAuthRoutes({
    access: () => access.current,
    signer,
    logger: logger.child({ component: 'auth' }),
    secure,
    publicUrl: config.publicUrl,
  });
  routes.push({
    path: '/auth/*',
    methods: ['GET', 'POST'],
    role: 'none',
    handle: async ({ req, res, query }) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (!(await authRoutes(req, res, path, query)))
        throw new HttpError(404, 'NOT_FOUND', `no page ${path}`);
    },
  });
  const route = createRouter(routes);
  const serveStatic = createStaticHandler(config.webDir);
  const httpLog = logger.child({ component: 'http' });
  // Refusals (foreign Origin, unknown kiosk token) are logged once a minute per source and kind.
  const refusalLog = new OncePerInterval(60_000, 10_000);
  const headers = securityHeaders({ secure });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendError(res, 400, 'VALIDATION', 'bad request URL');
      return;
    }
    const { pathname, searchParams } = url;
    const head = req.method === 'HEAD';
    const method = req.method ?? 'GET';
    const isApi = pathname === '/api' || pathname.startsWith('/api/') || pathname === '/metrics';
    const match = route(method, pathname);
    if (match === null && isApi) {
      sendError(res, 404, 'NOT_FOUND', `no API endpoint ${pathname}`, head);
      return;
    }
    if (match?.kind === 'method') {
      sendError(res, 405, 'VALIDATION', `method ${method} not allowed`, head, { allow: match.allow });
      return;
    }
    if (match?.kind === 'bad-param') {
      sendError(res, 400, 'VALIDATION', `${match.name} is not valid URL encoding`, head);
      return;
    }
    const src: CredentialSource = { headers: req.headers, remoteAddress: req.socket.remoteAddress };
    const who = authorize(src);
    if (match === null) {
      // A page of the web app (open to all: its data comes through the API and the socket).
      if ((method === 'GET' || head) && searchParams.has('access_token')) {
        kioskLogin(req, res, url);
        return;
      }
      pageSession(res, pathname, who, req);
      // The raw path, not the URL-normalised one: `..` segments are refused, not silently resolved.
      await serveStatic(req, res, (req.url ?? '/').split(/[?#]/, 1)[0] ?? '/');
      return;
    }
    // A state-changing request that a browser's cookie authenticates must come from our own page.
    if (method !== 'GET' && !head && parseCookies(req.headers.cookie).has(SESSION_COOKIE)) {
      const origin = req.headers.origin;
      if (!origin || !isAllowedOrigin(origin, req.headers.host, config.allowedOrigins, secure)) {
        const remote = peerAddress(req.socket.remoteAddress);
        const once = refusalLog.check(`cross-origin ${remote}`, Date.now());
        if (once)
          httpLog.warn(
            { origin: origin ?? null, path: pathname, remote, heldBack: once.suppressed },
            'cross-origin request refused',
          );
        sendError(
          res,
          403,
          'FORBIDDEN',
          "a request authenticated by a cookie must come from this server's own pages (Origin check)",
        );
        return;
      }
    }
    const { route: r, params } = match;
    const principal = who.principal;
    if (!roleAtLeast(principal.role, r.role) && !(r.admit?.({ req, principal }) ?? false)) {
      if (who.error) {
        sendError(res, 401, 'UNAUTHORIZED', who.error, head, {
          'www-authenticate': 'Bearer error="invalid_token"',
        });
      } else if (!who.presented) {
        sendError(
          res,
          401,
          'UNAUTHORIZED',
          `${pathname} needs the ${r.role} role: send Authorization: Bearer <token> or sign in`,
          head,
          {
            'www-authenticate': 'Bearer realm="gpupulse"',
          },
        );
      } else {
        sendError(
          res,
          403,
          'FORBIDDEN',
          `${pathname} needs the ${r.role} role; you have ${principal.role}`,
          head,
        );
      }
      return;
    }
    try {
      await r.handle({ req, res, params, query: searchParams, head, principal });
    } catch (err) {
      if (err instanceof HttpError || err instanceof ApiError) {
        sendError(res, err.status, err.code, err.message, head);
      } else if (err instanceof StoreQueryError) {
        httpLog.error({ err: err.message, url: req.url }, 'storage query failed');
        sendError(res, 503, 'UNAVAILABLE', 'the storage query failed; see the server log', head);
      } else throw err;
    }
  };

  /** `?access_token=T` on a page: swap the token for a session cookie, then drop it from the address bar. */
  const kioskLogin = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const token = url.searchParams.get('access_token') ?? '';
    url.searchParams.delete('access_token');
    const location = url.pathname + (url.searchParams.size > 0 ? `?${url.searchParams}` : '');
    const entry = token.length > 0 && token.length <= 512 ? findBySecret(access.current.tokens, token) : null;
    if (entry) {
      const value = signer.issue({
        via: 'token',
        name: entry.name,
        user: entry.user ?? null,
        tokenName: entry.name,
        iat: Date.now(),
        exp: null,
      });
      setSessionCookie(res, value, { secure, maxAgeSeconds: null });
      audit.info(
        { token: entry.name, role: entry.role, remote: peerAddress(req.socket.remoteAddress) },
        'kiosk sign-in with a token',
      );
    } else {
      const remote = peerAddress(req.socket.remoteAddress);
      const once = refusalLog.check(`kiosk ${remote}`, Date.now());
      if (once)
        httpLog.warn(
          { remote, path: url.pathname, heldBack: once.suppressed },
          'a page was opened with an access_token that is not in the access file; no session given',
        );
    }
    res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
  };

  /** On page loads: renew a wall's session cookie (browsers cap its life), drop a dead one. */
  const pageSession = (
    res: ServerResponse,
    pathname: string,
    who: Resolution,
    req: IncomingMessage,
  ): void => {
    if (extname(pathname) !== '') return;
    const cookie = parseCookies(req.headers.cookie).get(SESSION_COOKIE);
    if (!cookie) return;
    if (who.error) {
      clearSessionCookie(res, { secure });
    } else if (who.session?.via === 'token') {
      setSessionCookie(res, cookie, { secure, maxAgeSeconds: null });
    }
  };

  const tls = config.tls
    ? { tlsCert: config.tls.certFile, tlsKey: config.tls.keyFile }
    : { tlsCert: null, tlsKey: null };
  let httpServer: HttpServer;
  try {
    httpServer = createHttpListener(tls, (req, res) => {
      handle(req, res).catch((err: unknown) => {
        httpLog.error(
          { err, url: req.url?.replace(/access_token=[^&]*/g, 'access_token=…') },
          'request failed',
        );
        if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'internal server error');
        else res.destroy();
      });
    });
  } catch (err) {
    await closers.closeAll();
    throw err;
  }

  // ---- Socket.IO ----

  const io = new SocketIOServer(httpServer, {
    // Above the message limit: an oversized report reaches its handler and is answered TOO_LARGE;
    // the parser measures each frame and turns undecodable ones into a VALIDATION answer; while
    // storage would refuse them anyway, agents' replay batches are not even decoded (UNAVAILABLE).
    maxHttpBufferSize: LIMITS.maxTransportBytes,
    parser: createFrameParser({
      exactAbove: LIMITS.maxMessageBytes,
      shedReplay: { nsp: AGENT_NAMESPACE, shed: (bytes) => agentsNs.shedReplay(bytes) },
    }),
    serveClient: false,
    // Browsers send Origin: only our own pages (and GPUPULSE_ALLOWED_ORIGINS) may open a socket.
    // Agents are not browsers and send none.
    allowRequest: (req, callback) => {
      const ok = isAllowedOrigin(req.headers.origin, req.headers.host, config.allowedOrigins, secure);
      const remote = peerAddress(req.socket.remoteAddress);
      const once = ok ? null : refusalLog.check(`origin ${remote}`, Date.now());
      if (once)
        httpLog.warn(
          { origin: req.headers.origin, remote, heldBack: once.suppressed },
          'socket handshake from a foreign origin refused',
        );
      callback(ok ? null : 'origin not allowed', ok);
    },
  });
  if (cluster) io.adapter(cluster.adapter);
  closers.add('sockets', async () => {
    await new Promise<void>((resolve) => {
      io.close(() => resolve());
      httpServer.closeAllConnections();
    });
  });

  const agentsNs = setupAgentNamespace({
    nsp: io.of(AGENT_NAMESPACE) as unknown as AgentNamespace,
    agentTokens: config.agentTokens,
    access,
    limits: config.agentLimits,
    fleet,
    buffer: writeBuffer,
    clock,
    logger: logger.child({ component: 'agents' }),
    metrics,
    clockSkewMs: config.clockSkewMs,
    sampleWindow: { maxAgeMs: config.sampleMaxAgeMs, maxAheadMs: config.sampleMaxAheadMs },
    onGpuEvents: (node, events, gpus) => {
      alerts.recordEvents(node, events, gpus);
      cluster?.publishEvents(node, events, gpus);
    },
    // In a cluster an ack waits until the samples reached Redis (a survivor can store them).
    ...(cluster ? { ackAfter: () => cluster?.published() ?? null } : {}),
  });
  const dash = setupDashboardNamespace({
    nsp: io.of(DASHBOARD_NAMESPACE) as unknown as DashboardNamespace,
    fleet,
    clock,
    logger: logger.child({ component: 'dashboards' }),
    metrics,
    storageInfo,
    authorize,
    maxDashboards: config.maxDashboards,
    resyncMinIntervalMs: config.resyncMinIntervalMs,
    deltaIntervalMs: config.deltaIntervalMs,
    deltaPhaseMs: config.deltaPhaseMs,
    intervalMs: config.defaultAgentIntervalMs,
    alertsSnapshot: () => alerts.snapshot(),
    projects: { meta: projectsMeta, latest: () => liveUsage.latest(), tick: () => liveUsage.update() },
    clustered: cluster !== null,
  });
  closers.add('dashboard ticker', () => dash.stop());

  projects.onChange(() => {
    fleet.reattribute();
    dash.publishMeta(projectsMeta());
  });
  projects.start();
  closers.add('projects file', () => projects.close());
  // A token removed from the access file ends the sessions and sockets that use it.
  access.onChange(() => dash.recheck());
  access.start();
  closers.add('access file', () => access.close());

  const every = (name: string, ms: number, fn: () => void) => {
    const t = setInterval(fn, ms);
    t.unref();
    closers.add(name, () => clearInterval(t));
  };
  every('rollup timer', 5000, () => {
    if (lease.held()) rollups.flush();
  });
  // The 1 s ticker: node statuses, then alert rules over the fresh statuses.
  every('sweeper', config.sweepIntervalMs, () => {
    fleet.sweep();
    alerts.tick();
    // Nudges are singleton work: only the lease holder sends them.
    if (lease.held()) nudges.tick();
  });
  // Keep storage health fresh when no writes happen.
  every('storage pinger', 5000, () => {
    if (writeBuffer.buffered === 0) void store.ping();
  });

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
    await closers.closeAll();
    throw err;
  }
  listening = true;
  reportMailer ??= mailer;
  reportDelivery?.start();
  const port = (httpServer.address() as AddressInfo).port;
  const host = !config.host || config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `${config.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  baseUrl ||= url;

  let closing: Promise<void> | null = null;
  return {
    port,
    url,
    fleet,
    store,
    buffer: writeBuffer,
    registry: metrics.registry,
    io,
    alerts,
    spool,
    projects,
    access,
    routes: routes.map((r) => ({ path: r.path, methods: r.methods, role: r.role })),
    usage: liveUsage,
    nudges,
    mailer,
    rollups,
    periodUsage,
    reportDelivery,
    lease,
    cluster,
    retentionPolicies,
    tick: () => dash.tick(),
    health,
    close() {
      closing ??= closers.closeAll();
      return closing;
    },
  };
}

/** The JSON object body of a POST (at most 64 KiB; empty = `{}`). */
async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 65536) throw new HttpError(413, 'TOO_LARGE', 'the request body is larger than 64 KiB');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // below
  }
  throw new HttpError(400, 'VALIDATION', 'the body must be a JSON object, e.g. {"silence":"2h"}');
}

/** `30m`, `2h`, `1d` (or milliseconds as a number) → ms; at most 30 days. */
export function parseSilence(v: unknown): number {
  let ms: number | null = null;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) ms = v;
  else if (typeof v === 'string') {
    const m = /^(\d{1,6})(s|m|h|d)$/.exec(v.trim());
    if (m)
      ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  }
  if (ms === null || ms > 30 * 86_400_000) {
    throw new HttpError(
      400,
      'VALIDATION',
      'silence must be a duration like "30m", "2h" or "1d" (at most 30 days)',
    );
  }
  return ms;
}
