import { createHash, timingSafeEqual } from 'node:crypto';
import {
  AgentAuthSchema,
  type AgentToServerEvents,
  type ConnectErrorData,
  describeZodError,
  type ErrorCode,
  fail,
  type GpuEvent,
  type GpuMetrics,
  InventorySchema,
  ok,
  PROTOCOL_VERSION,
  SamplesReportSchema,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Namespace, Socket } from 'socket.io';
import type { Clock } from '../clock.ts';
import { applyProcessUpdate, type FleetState } from '../fleet/fleet-state.ts';
import type { ServerMetrics } from '../metrics.ts';
import { SlowFieldGate, samplePoints } from '../storage/schema.ts';
import type { WriteBuffer } from '../storage/write-buffer.ts';

export interface AgentSocketData {
  node: string;
  agentVersion: string | null;
  intervalMs: number | null;
  connectionId: string;
  skewNoticeSent: boolean;
}

export type AgentNamespace = Namespace<
  AgentToServerEvents,
  ServerToAgentEvents,
  Record<string, never>,
  AgentSocketData
>;
type AgentSocket = Socket<AgentToServerEvents, ServerToAgentEvents, Record<string, never>, AgentSocketData>;

export interface AgentNamespaceDeps {
  nsp: AgentNamespace;
  agentTokens: readonly string[];
  fleet: FleetState;
  buffer: WriteBuffer;
  clock: Clock;
  logger: Logger;
  metrics: ServerMetrics;
  clockSkewMs: number;
  /** Driver events (XID …) of accepted samples, for the alert engine. */
  onGpuEvents?(node: string, events: GpuEvent[], gpus: readonly GpuMetrics[]): void;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time check of a token against every allowed token (no early exit). */
export function createTokenCheck(tokens: readonly string[]): (candidate: string) => boolean {
  const allowed = tokens.map(digest);
  return (candidate) => {
    const d = digest(candidate);
    let match = false;
    for (const a of allowed) match = timingSafeEqual(a, d) || match;
    return match;
  };
}

function connectError(code: ErrorCode, message: string): Error & { data: ConnectErrorData } {
  const err = new Error(message) as Error & { data: ConnectErrorData };
  err.data = { code, message };
  return err;
}

function remoteAddress(socket: { handshake: { address: string; headers: Record<string, unknown> } }): string {
  return socket.handshake.address;
}

/** Wires `/agent`: auth middleware, replacement of duplicate nodes, `samples:report`, `inventory:report`. */
export function setupAgentNamespace(deps: AgentNamespaceDeps): { connected(): number } {
  const { nsp, fleet, buffer, clock, metrics } = deps;
  const log = deps.logger;
  const checkToken = createTokenCheck(deps.agentTokens);
  const byNode = new Map<string, AgentSocket>();
  const slowFields = new SlowFieldGate();
  let connections = 0;

  nsp.use((socket, next) => {
    const auth: unknown = socket.handshake.auth;
    const raw = (typeof auth === 'object' && auth !== null ? auth : {}) as Record<string, unknown>;
    const refuse = (code: ErrorCode, message: string) => {
      metrics.agentsRefused.inc({ code });
      log.warn(
        {
          code,
          remote: remoteAddress(socket),
          node: typeof raw.node === 'string' ? raw.node.slice(0, 256) : null,
        },
        `agent refused: ${message}`,
      );
      next(connectError(code, message));
    };
    if (deps.agentTokens.length === 0) {
      refuse(
        'UNAUTHORIZED',
        'this server accepts no agent tokens: set GPUPULSE_AGENT_TOKENS=<token>[,<token>…] on the server',
      );
      return;
    }
    if (typeof raw.token !== 'string' || raw.token === '') {
      refuse('UNAUTHORIZED', 'missing agent token (handshake auth.token)');
      return;
    }
    if (raw.token.length > 512 || !checkToken(raw.token)) {
      refuse('UNAUTHORIZED', 'invalid agent token');
      return;
    }
    if (raw.protocolVersion !== PROTOCOL_VERSION) {
      refuse(
        'PROTOCOL_VERSION',
        `protocol version mismatch: agent speaks ${JSON.stringify(raw.protocolVersion ?? null)}, ` +
          `server speaks ${PROTOCOL_VERSION}; upgrade the older side`,
      );
      return;
    }
    const parsed = AgentAuthSchema.safeParse(auth);
    if (!parsed.success) {
      refuse('VALIDATION', `invalid handshake: ${describeZodError(parsed.error)}`);
      return;
    }
    socket.data.node = parsed.data.node;
    socket.data.agentVersion = parsed.data.agentVersion ?? null;
    socket.data.intervalMs = parsed.data.intervalMs ?? null;
    socket.data.connectionId = socket.id;
    socket.data.skewNoticeSent = false;
    next();
  });

  nsp.on('connection', (socket) => {
    const { node } = socket.data;
    const slog = log.child({ node });
    connections++;
    metrics.agentsConnected.inc();
    const previous = byNode.get(node);
    byNode.set(node, socket);
    fleet.connect(node, socket.data.connectionId, socket.data.intervalMs ?? undefined);
    slog.info(
      {
        remote: remoteAddress(socket),
        agentVersion: socket.data.agentVersion,
        intervalMs: socket.data.intervalMs,
      },
      previous ? 'agent connected (replacing an earlier connection of this node)' : 'agent connected',
    );
    if (previous) {
      previous.emit('server:notice', {
        level: 'warn',
        code: 'REPLACED',
        message: `another agent connected as node ${node}; this connection is closed`,
      });
      previous.disconnect(true);
    }

    socket.on('disconnect', (reason) => {
      connections--;
      metrics.agentsConnected.dec();
      if (byNode.get(node) === socket) byNode.delete(node);
      fleet.disconnect(node, socket.data.connectionId);
      slog.info({ reason }, 'agent disconnected');
    });

    socket.on('samples:report', (report, ack) => {
      metrics.sampleReports.inc();
      if (typeof ack !== 'function') {
        metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'no_ack' });
        slog.debug('samples:report without an ack callback ignored');
        return;
      }
      try {
        const parsed = SamplesReportSchema.safeParse(report);
        if (!parsed.success) {
          metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'validation' });
          const message = describeZodError(parsed.error);
          slog.debug({ err: message }, 'invalid samples:report');
          ack(fail('VALIDATION', message));
          return;
        }
        const { samples, replay } = parsed.data;
        const now = clock.now();
        // Build the points first (attribution needs the process list in effect for each sample).
        let processes = fleet.processesOf(node);
        const points = [];
        const ordered = [...samples].sort((a, b) => a.ts - b.ts);
        for (const s of ordered) {
          // Full lists replace, deltas ('delta' mode: new/changed + gone) patch the list in effect.
          processes = applyProcessUpdate(processes, s);
          points.push(...samplePoints(node, s, processes, fleet.attributeFn, slowFields));
        }
        if (points.length > buffer.free && buffer.buffered > 0) {
          // Acking would lose data: let the agent keep it in its spool and send it again later.
          metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'backlog_full' });
          fleet.ingest(node, samples);
          ack(fail('UNAVAILABLE', 'storage backlog is full; keep the samples and retry later'));
          return;
        }
        fleet.ingest(node, samples);
        buffer.enqueue(points);
        if (deps.onGpuEvents) {
          const events = ordered.flatMap((s) => s.gpuEvents ?? []);
          if (events.length > 0) deps.onGpuEvents(node, events, ordered[ordered.length - 1]!.gpus);
        }
        metrics.samplesReceived.inc(samples.length);
        if (!replay && !socket.data.skewNoticeSent) {
          const latest = ordered[ordered.length - 1]!;
          const skew = latest.ts - now;
          if (Math.abs(skew) > deps.clockSkewMs) {
            socket.data.skewNoticeSent = true;
            slog.warn({ skewMs: skew }, 'agent clock differs from server clock');
            socket.emit('server:notice', {
              level: 'warn',
              code: 'CLOCK_SKEW',
              message: `agent clock is ${Math.abs(skew)} ms ${skew > 0 ? 'ahead of' : 'behind'} the server; run NTP/chrony on the node`,
            });
          }
        }
        ack(ok({ acked: samples.map((s) => s.seq), serverTime: now }));
      } catch (err) {
        slog.error({ err }, 'samples:report handler failed');
        metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'internal' });
        try {
          ack(fail('INTERNAL', 'internal server error'));
        } catch {
          // the ack itself failed: nothing more to do
        }
      }
    });

    socket.on('inventory:report', (inventory, ack) => {
      if (typeof ack !== 'function') {
        metrics.rejectedPayloads.inc({ event: 'inventory:report', reason: 'no_ack' });
        return;
      }
      try {
        const parsed = InventorySchema.safeParse(inventory);
        if (!parsed.success) {
          metrics.rejectedPayloads.inc({ event: 'inventory:report', reason: 'validation' });
          ack(fail('VALIDATION', describeZodError(parsed.error)));
          return;
        }
        fleet.setInventory(node, parsed.data);
        slog.debug({ agentVersion: parsed.data.agentVersion, gpus: parsed.data.gpus.length }, 'inventory');
        ack(ok({ serverTime: clock.now() }));
      } catch (err) {
        slog.error({ err }, 'inventory:report handler failed');
        try {
          ack(fail('INTERNAL', 'internal server error'));
        } catch {
          // ignore
        }
      }
    });
  });

  return { connected: () => connections };
}
