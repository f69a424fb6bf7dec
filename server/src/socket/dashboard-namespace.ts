import {
  type AlertsList,
  type ConnectErrorData,
  DashboardAuthSchema,
  type DashboardToServerEvents,
  describeZodError,
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
import type { Namespace } from 'socket.io';
import type { Clock } from '../clock.ts';
import type { FleetState } from '../fleet/fleet-state.ts';
import type { ServerMetrics } from '../metrics.ts';
import { DeltaEncoder } from './delta-encoder.ts';

export type DashboardNamespace = Namespace<
  DashboardToServerEvents,
  ServerToDashboardEvents,
  Record<string, never>,
  Record<string, never>
>;

export interface DashboardNamespaceDeps {
  nsp: DashboardNamespace;
  fleet: FleetState;
  clock: Clock;
  logger: Logger;
  metrics: ServerMetrics;
  storageInfo(): StorageInfo;
  /** `fleet:delta` cadence. */
  deltaIntervalMs: number;
  /** Offset of each tick within the wall-clock period (agents sample on period boundaries). */
  deltaPhaseMs?: number;
  intervalMs: number;
  /** Firing and recently resolved alerts, sent as `alerts:snapshot` on connect. */
  alertsSnapshot?(): AlertsList;
  /** Projects: `projects:meta` + the latest `projects:usage` on connect, `projects:usage` every tick. */
  projects?: { meta(): ProjectsMeta; latest(): ProjectsUsage; tick(): ProjectsUsage };
}

export const DASHBOARD_ROOM = 'fleet';

/**
 * Wires `/dashboard`: optional auth, a `fleet:snapshot` on connect, `fleet:resync`, and one
 * server-wide ticker that sends a `fleet:delta` every tick, empty when nothing changed (a
 * heartbeat: a dashboard that stops getting deltas knows its picture is stale).
 */
export function setupDashboardNamespace(deps: DashboardNamespaceDeps): {
  connected(): number;
  tick(): void;
  stop(): void;
} {
  const { nsp, fleet, clock, metrics } = deps;
  const log = deps.logger;
  let connections = 0;
  let lastStorage = JSON.stringify(deps.storageInfo());

  const snapshot = (): FleetSnapshot => ({
    serverTime: clock.now(),
    intervalMs: deps.intervalMs,
    storage: deps.storageInfo(),
    nodes: fleet.snapshot(),
  });

  nsp.use((socket, next) => {
    const parsed = DashboardAuthSchema.safeParse(socket.handshake.auth ?? {});
    if (!parsed.success) {
      const message = `invalid handshake: ${describeZodError(parsed.error)}`;
      const err = new Error(message) as Error & { data: ConnectErrorData };
      err.data = { code: 'VALIDATION', message };
      next(err);
      return;
    }
    const v = parsed.data.protocolVersion;
    if (v !== undefined && v !== PROTOCOL_VERSION) {
      const message = `protocol version mismatch: dashboard speaks ${v}, server speaks ${PROTOCOL_VERSION}; reload the page`;
      const err = new Error(message) as Error & { data: ConnectErrorData };
      err.data = { code: 'PROTOCOL_VERSION', message };
      next(err);
      return;
    }
    next();
  });

  const encoder = new DeltaEncoder();

  nsp.on('connection', (socket) => {
    connections++;
    encoder.clientJoined();
    metrics.dashboardsConnected.inc();
    log.debug({ remote: socket.handshake.address }, 'dashboard connected');
    socket.emit('fleet:snapshot', snapshot());
    if (deps.alertsSnapshot) socket.emit('alerts:snapshot', deps.alertsSnapshot());
    if (deps.projects) {
      socket.emit('projects:meta', deps.projects.meta());
      socket.emit('projects:usage', deps.projects.latest());
    }
    socket.join(DASHBOARD_ROOM);
    socket.on('fleet:resync', (ack) => {
      if (typeof ack !== 'function') return;
      try {
        encoder.clientJoined();
        ack(ok(snapshot()));
      } catch (err) {
        log.error({ err }, 'fleet:resync failed');
        ack(fail('INTERNAL', 'internal server error'));
      }
    });
    socket.on('disconnect', () => {
      connections--;
      metrics.dashboardsConnected.dec();
      log.debug('dashboard disconnected');
    });
  });

  const tick = () => {
    try {
      const changes = fleet.takeChanges();
      const { nodes, patches } = encoder.encode(changes.nodes, changes.removed);
      const removed = changes.removed;
      const storage = deps.storageInfo();
      const storageKey = JSON.stringify(storage);
      const storageChanged = storageKey !== lastStorage;
      lastStorage = storageKey;
      nsp.to(DASHBOARD_ROOM).emit('fleet:delta', {
        serverTime: clock.now(),
        nodes,
        patches,
        removed,
        ...(storageChanged ? { storage } : {}),
      });
      metrics.deltasSent.inc();
      if (deps.projects) nsp.to(DASHBOARD_ROOM).emit('projects:usage', deps.projects.tick());
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
  };
}

/** Milliseconds from `now` to the next instant `k × period + phase` (strictly in the future). */
export function nextTickDelay(now: number, period: number, phase: number): number {
  const p = ((phase % period) + period) % period;
  const next = Math.floor((now - p) / period) * period + p + period;
  return next - now;
}
