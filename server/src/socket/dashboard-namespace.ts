import {
  type AlertsList,
  type ConnectErrorData,
  DashboardAuthSchema,
  type DashboardToServerEvents,
  describeZodError,
  type ErrorCode,
  type FleetDelta,
  type FleetSnapshot,
  fail,
  ok,
  PROTOCOL_VERSION,
  type ProjectsMeta,
  type ProjectsUsage,
  type ServerToDashboardEvents,
  type StorageInfo,
} from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Namespace, Socket } from 'socket.io';
import type { CredentialSource, Resolution } from '../access/principal.ts';
import {
  redactAlerts,
  redactNodes,
  redactPatches,
  redactProjectsUsage,
  seesPeople,
} from '../access/redact.ts';
import type { Principal, Role } from '../access/roles.ts';
import type { Clock } from '../clock.ts';
import type { FleetState } from '../fleet/fleet-state.ts';
import type { ServerMetrics } from '../metrics.ts';
import { DeltaEncoder } from './delta-encoder.ts';

export interface DashboardSocketData {
  principal: Principal;
  /** What the principal was resolved from (re-checked when the access file changes). */
  credentials: CredentialSource;
  lastResyncAt: number;
}

export type DashboardNamespace = Namespace<
  DashboardToServerEvents,
  ServerToDashboardEvents,
  Record<string, never>,
  DashboardSocketData
>;
type DashboardSocket = Socket<
  DashboardToServerEvents,
  ServerToDashboardEvents,
  Record<string, never>,
  DashboardSocketData
>;

export interface DashboardNamespaceDeps {
  nsp: DashboardNamespace;
  fleet: FleetState;
  clock: Clock;
  logger: Logger;
  metrics: ServerMetrics;
  storageInfo(): StorageInfo;
  /** Who is connecting (token, cookie, proxy headers, address); see access/principal.ts. */
  authorize(src: CredentialSource): Resolution;
  /** Most dashboards at once (GPUPULSE_MAX_DASHBOARDS); more are refused at connect. */
  maxDashboards?: number;
  /** Packets queued for one dashboard beyond which it is cut off as not reading (default 30). */
  maxQueuedPackets?: number;
  /** Least time between two `fleet:resync` of one dashboard (default 5 s). */
  resyncMinIntervalMs?: number;
  /** `fleet:delta` cadence. */
  deltaIntervalMs: number;
  /** Offset of each tick within the wall-clock period (agents sample on period boundaries). */
  deltaPhaseMs?: number;
  intervalMs: number;
  /** Firing and recently resolved alerts, sent as `alerts:snapshot` on connect. */
  alertsSnapshot?(): AlertsList;
  /** Projects: `projects:meta` + the latest `projects:usage` on connect, `projects:usage` every tick. */
  projects?: { meta(): ProjectsMeta; latest(): ProjectsUsage; tick(): ProjectsUsage };
  /**
   * Several processes share the namespace over the Redis adapter (GPUPULSE_REDIS_URL). Deltas,
   * usage and meta go to this process's own dashboards (`nsp.local`: each process encodes them
   * from its replica of the whole fleet); alert changes go to every process's dashboards.
   */
  clustered?: boolean;
}

/** Every dashboard (role-independent events: `projects:meta`). */
export const DASHBOARD_ROOM = 'fleet';
/** Viewers and admins: user and job names included. */
export const PEOPLE_ROOM = 'fleet:people';
/** The display role: user and job names removed by the server. */
export const DISPLAY_ROOM = 'fleet:display';

export const roomOf = (role: Role): string => (seesPeople(role) ? PEOPLE_ROOM : DISPLAY_ROOM);

export interface Dashboards {
  connected(): number;
  tick(): void;
  stop(): void;
  /** Sends changed alerts to every dashboard, as each role may see them. */
  publishAlerts(list: AlertsList): void;
  publishMeta(meta: ProjectsMeta): void;
  /** Re-resolves every dashboard's principal (after an access file change); disconnects those whose role changed. */
  recheck(): number;
}

function refuse(code: ErrorCode, message: string): Error & { data: ConnectErrorData } {
  const err = new Error(message) as Error & { data: ConnectErrorData };
  err.data = { code, message };
  return err;
}

/**
 * Wires `/dashboard`: who may connect (role from the handshake, `none` refused), a bounded
 * number of dashboards, a `fleet:snapshot` on connect, rate-limited `fleet:resync`, and one
 * server-wide ticker that sends a `fleet:delta` every tick, empty when nothing changed (a
 * heartbeat: a dashboard that stops getting deltas knows its picture is stale).
 *
 * Each tick is encoded once and redacted once for the display role; the two role rooms get one
 * broadcast each. A dashboard that joined or resynced since the previous tick gets the changed
 * nodes in full for that tick, alone (its snapshot may be newer than what patches are computed
 * against); the others keep compact patches.
 */
export function setupDashboardNamespace(deps: DashboardNamespaceDeps): Dashboards {
  const { nsp, fleet, clock, metrics } = deps;
  const log = deps.logger;
  const maxDashboards = deps.maxDashboards ?? 500;
  const resyncMinIntervalMs = deps.resyncMinIntervalMs ?? 5000;
  let connections = 0;
  let lastStorage = JSON.stringify(deps.storageInfo());
  /** Sockets that get full changed nodes in the next delta (joined or resynced since the last tick). */
  const fullNext = new Set<string>();

  const snapshot = (role: Role): FleetSnapshot => ({
    serverTime: clock.now(),
    intervalMs: deps.intervalMs,
    storage: deps.storageInfo(),
    nodes: redactNodes(fleet.snapshot(), role),
  });

  nsp.use((socket, next) => {
    const parsed = DashboardAuthSchema.safeParse(socket.handshake.auth ?? {});
    if (!parsed.success) {
      next(refuse('VALIDATION', `invalid handshake: ${describeZodError(parsed.error)}`));
      return;
    }
    const v = parsed.data.protocolVersion;
    if (v !== undefined && v !== PROTOCOL_VERSION) {
      next(
        refuse(
          'PROTOCOL_VERSION',
          `protocol version mismatch: dashboard speaks ${v}, server speaks ${PROTOCOL_VERSION}; reload the page`,
        ),
      );
      return;
    }
    const credentials: CredentialSource = {
      headers: socket.handshake.headers,
      remoteAddress: socket.handshake.address,
      token: parsed.data.token || null,
    };
    const { principal, error } = deps.authorize(credentials);
    if (principal.role === 'none') {
      next(
        refuse(
          'UNAUTHORIZED',
          error ??
            'this server does not show the fleet to anonymous visitors: sign in, or open the page with ?access_token=<token>',
        ),
      );
      return;
    }
    if (nsp.sockets.size >= maxDashboards) {
      log.warn({ maxDashboards }, 'dashboard refused: GPUPULSE_MAX_DASHBOARDS reached');
      next(
        refuse(
          'UNAVAILABLE',
          `the server already serves ${maxDashboards} dashboards (GPUPULSE_MAX_DASHBOARDS); try again later`,
        ),
      );
      return;
    }
    socket.data = { principal, credentials, lastResyncAt: 0 };
    next();
  });

  const encoder = new DeltaEncoder();

  nsp.on('connection', (socket: DashboardSocket) => {
    connections++;
    metrics.dashboardsConnected.inc();
    const { role } = socket.data.principal;
    log.debug({ remote: socket.handshake.address, role }, 'dashboard connected');
    socket.emit('fleet:snapshot', snapshot(role));
    if (deps.alertsSnapshot) socket.emit('alerts:snapshot', redactAlerts(deps.alertsSnapshot(), role));
    if (deps.projects) {
      socket.emit('projects:meta', deps.projects.meta());
      socket.emit('projects:usage', redactProjectsUsage(deps.projects.latest(), role));
    }
    socket.join([DASHBOARD_ROOM, roomOf(role)]);
    fullNext.add(socket.id);
    socket.on('fleet:resync', (ack) => {
      if (typeof ack !== 'function') return;
      try {
        const now = Date.now();
        const wait = socket.data.lastResyncAt + resyncMinIntervalMs - now;
        if (wait > 0) {
          ack(
            fail(
              'RATE_LIMITED',
              `resync at most once every ${resyncMinIntervalMs} ms; retry in ${wait} ms (deltas keep coming meanwhile)`,
            ),
          );
          return;
        }
        socket.data.lastResyncAt = now;
        fullNext.add(socket.id);
        ack(ok(snapshot(socket.data.principal.role)));
      } catch (err) {
        log.error({ err }, 'fleet:resync failed');
        ack(fail('INTERNAL', 'internal server error'));
      }
    });
    socket.on('disconnect', () => {
      connections--;
      fullNext.delete(socket.id);
      metrics.dashboardsConnected.dec();
      log.debug('dashboard disconnected');
    });
  });

  const members = (room: string): number => nsp.adapter.rooms.get(room)?.size ?? 0;

  // A dashboard that does not read makes Engine.IO queue every packet for it in memory, without
  // bound. Past this many queued packets (~10 s of deltas and usage) it is cut off, the queue
  // discarded, and counted; when it reads again it reconnects and gets a fresh snapshot.
  const maxQueuedPackets = deps.maxQueuedPackets ?? 30;
  const dropStalled = () => {
    for (const s of nsp.sockets.values()) {
      const queued = (s.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer?.length ?? 0;
      if (queued <= maxQueuedPackets) continue;
      log.warn({ remote: s.handshake.address, queued }, 'dashboard stopped reading: disconnected');
      metrics.dashboardsDropped.inc();
      s.conn.close(true);
    }
  };

  const tick = () => {
    try {
      dropStalled();
      const changes = fleet.takeChanges();
      const { nodes, patches } = encoder.encode(changes.nodes, changes.removed);
      const storage = deps.storageInfo();
      const storageKey = JSON.stringify(storage);
      const storageChanged = storageKey !== lastStorage;
      lastStorage = storageKey;
      const base = {
        serverTime: clock.now(),
        removed: changes.removed,
        ...(storageChanged ? { storage } : {}),
      };
      const joined = [...fullNext];
      fullNext.clear();
      const joinedPeople: string[] = [];
      const joinedDisplay: string[] = [];
      for (const id of joined) {
        const s = nsp.sockets.get(id);
        if (s) (seesPeople(s.data.principal.role) ? joinedPeople : joinedDisplay).push(id);
      }
      const send = (room: string, ids: string[], redact: boolean) => {
        if (members(room) > ids.length) {
          const delta: FleetDelta = {
            ...base,
            nodes: redact ? redactNodes(nodes, 'display') : nodes,
            patches: redact ? redactPatches(patches, 'display') : patches,
          };
          nsp.local.to(room).except(ids).emit('fleet:delta', delta);
        }
        if (ids.length > 0) {
          const full: FleetDelta = {
            ...base,
            nodes: redact ? redactNodes(changes.nodes, 'display') : changes.nodes,
            patches: [],
          };
          nsp.local.to(ids).emit('fleet:delta', full);
        }
      };
      send(PEOPLE_ROOM, joinedPeople, false);
      send(DISPLAY_ROOM, joinedDisplay, true);
      metrics.deltasSent.inc();
      if (deps.projects) {
        const usage = deps.projects.tick();
        if (members(PEOPLE_ROOM) > 0) nsp.local.to(PEOPLE_ROOM).emit('projects:usage', usage);
        if (members(DISPLAY_ROOM) > 0)
          nsp.local.to(DISPLAY_ROOM).emit('projects:usage', redactProjectsUsage(usage, 'display'));
      }
    } catch (err) {
      log.error({ err }, 'fleet:delta tick failed');
    }
  };
  // Ticks at k × period + phase of the wall clock (not the injected clock: timers run on real
  // time). Agents sample on period boundaries, so each delta carries samples ~phase ms old.
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  // A delta waits (in steps of 25 ms, up to `maxWaitMs` after the phase) while fewer than 95 %
  // of the online nodes have reported this period's sample: a busy server still ships each
  // second's samples in that second's delta instead of a second later.
  const period = deps.deltaIntervalMs;
  const phase = deps.deltaPhaseMs ?? 0;
  const maxWaitMs = Math.min(Math.floor(period / 2), 500);
  const attempt = (periodStart: number) => {
    if (stopped) return;
    const { expected, reported } = fleet.periodProgress(periodStart, period);
    const late = Date.now() - (periodStart + phase);
    if (reported < 0.95 * expected && late < maxWaitMs) {
      timer = setTimeout(() => attempt(periodStart), 25);
      timer.unref();
      return;
    }
    tick();
    schedule();
  };
  const schedule = () => {
    if (stopped) return;
    const now = Date.now();
    const delay = nextTickDelay(now, period, phase);
    const periodStart = Math.floor((now + delay - phase) / period) * period;
    timer = setTimeout(() => attempt(periodStart), delay);
    timer.unref();
  };
  schedule();

  return {
    connected: () => connections,
    tick,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    publishAlerts: (list) => {
      // Clustered: the rooms' members may be on other processes (the adapter counts no remote ones).
      if (deps.clustered || members(PEOPLE_ROOM) > 0) nsp.to(PEOPLE_ROOM).emit('alerts:changed', list);
      if (deps.clustered || members(DISPLAY_ROOM) > 0)
        nsp.to(DISPLAY_ROOM).emit('alerts:changed', redactAlerts(list, 'display'));
    },
    publishMeta: (meta) => {
      nsp.local.to(DASHBOARD_ROOM).emit('projects:meta', meta);
    },
    recheck: () => {
      let dropped = 0;
      for (const socket of nsp.sockets.values()) {
        const { principal } = deps.authorize(socket.data.credentials);
        if (principal.role !== socket.data.principal.role) {
          dropped++;
          log.info(
            { name: socket.data.principal.name, from: socket.data.principal.role, to: principal.role },
            'dashboard role changed with the access file; disconnecting it (it reconnects with the new role)',
          );
          socket.disconnect(true);
        }
      }
      return dropped;
    },
  };
}

/** Milliseconds from `now` to the next instant `k × period + phase` (strictly in the future). */
export function nextTickDelay(now: number, period: number, phase: number): number {
  const p = ((phase % period) + period) % period;
  const next = Math.floor((now - p) / period) * period + p + period;
  return next - now;
}
