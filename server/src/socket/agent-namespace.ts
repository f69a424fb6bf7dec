import { performance } from 'node:perf_hooks';
import {
  type Ack,
  AgentAuthSchema,
  type AgentToServerEvents,
  type ConnectErrorData,
  describeZodError,
  type ErrorCode,
  fail,
  type GpuEvent,
  type GpuMetrics,
  InventorySchema,
  LIMITS,
  ok,
  PROTOCOL_VERSION,
  type SamplesAckData,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Namespace, Socket } from 'socket.io';
import type { Clock } from '../clock.ts';
import type { FleetState } from '../fleet/fleet-state.ts';
import { estimatePoints, IngestPipeline } from '../ingest/pipeline.ts';
import {
  type CheckedReport,
  DEFAULT_SAMPLE_WINDOW,
  ReportCheck,
  type SampleWindow,
  startCheck,
} from '../ingest/validate.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { Refusal, WriteBuffer } from '../storage/write-buffer.ts';
import {
  type AgentAccessSource,
  AgentAuthority,
  type AgentRateLimits,
  addressKey,
  isLoopback,
  OncePerInterval,
  resolveLimits,
  TokenBuckets,
  tokenDigest,
} from './agent-auth.ts';
import { frameBytesOf, MALFORMED_FRAME_EVENT, type MalformedFrame, shedReportOf } from './frame-parser.ts';

export interface AgentSocketData {
  node: string;
  agentVersion: string | null;
  intervalMs: number | null;
  connectionId: string;
  skewNoticeSent: boolean;
  /** A refused sample / malformed frame was logged on this connection (once each). */
  rejectLogged?: boolean;
  malformedLogged?: boolean;
  /** The token's label (access file name or `GPUPULSE_AGENT_TOKENS[i]`), never the token. */
  agentName: string;
  /** SHA-256 hex of the token: the connection's identity (same token = same agent). */
  tokenId: string;
  remote: string;
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
  /** The access file (`agents:` tokens bound to node globs), hot-reloaded; absent: env tokens only. */
  access?: AgentAccessSource | null;
  /** Handshake and report rate limits; defaults: `DEFAULT_AGENT_LIMITS` in agent-auth.ts. */
  limits?: Partial<AgentRateLimits>;
  /** Driver events (XID …) of accepted samples, for the alert engine. */
  onGpuEvents?(node: string, events: GpuEvent[], gpus: readonly GpuMetrics[]): void;
  /**
   * Scale-out: resolves once what was just handed over reached the other processes (Redis); the
   * ack waits for it, so an acked sample is stored here or held by a survivor. Null: ack now.
   */
  ackAfter?(): Promise<void> | null;
  /** How far a sample's `ts` may be from the server clock (default 24 h back, 5 min ahead). */
  sampleWindow?: SampleWindow;
}

function connectError(code: ErrorCode, message: string): Error & { data: ConnectErrorData } {
  const err = new Error(message) as Error & { data: ConnectErrorData };
  err.data = { code, message };
  return err;
}

function remoteAddress(socket: { handshake: { address: string; headers: Record<string, unknown> } }): string {
  return socket.handshake.address;
}

/** Retry hint of a rate-limited report: a second refills a good part of the node's bucket. */
const REPORT_RETRY_AFTER_MS = 1000;

/**
 * Validation runs in slices of about this long: a 500-sample replay batch (tens of ms of zod on a
 * busy machine) never holds the event loop for all of it, so /metrics, health and acks get a turn.
 */
const VALIDATION_SLICE_MS = 4;

const anotherTokenMessage = (node: string) =>
  `node ${node} is connected with another token; refused (only a connection with the same token may replace it)`;

export interface AgentNamespaceHandle {
  connected(): number;
  /**
   * For the frame parser: whether a replay report of `frameBytes` would be refused by storage
   * anyway, so it need not be decoded. Its points are estimated low from the size (bytes per point
   * of the reports decoded so far, a slowly decaying high mark); before any: only when not even
   * one point would be taken.
   */
  shedReplay(frameBytes: number): boolean;
}

/** Wires `/agent`: auth middleware, replacement of duplicate nodes, `samples:report`, `inventory:report`. */
export function setupAgentNamespace(deps: AgentNamespaceDeps): AgentNamespaceHandle {
  const { nsp, fleet, buffer, clock, metrics } = deps;
  const log = deps.logger;
  const authority = new AgentAuthority(deps.agentTokens, deps.access ?? null);
  const limits = resolveLimits(deps.limits);
  const handshakesByAddress = new TokenBuckets(limits.handshakesPerAddress, limits.maxKeys);
  const handshakesByNode = new TokenBuckets(limits.handshakesPerNode, limits.maxKeys);
  const reportsByNode = new TokenBuckets(limits.reportsPerNode, limits.maxKeys);
  const refusalLog = new OncePerInterval(limits.refusalLogIntervalMs, limits.maxKeys);
  // Rate limits run on the monotonic clock, not the (possibly manual) sample clock.
  const monoNow = () => performance.now();
  const byNode = new Map<string, AgentSocket>();
  const pipeline = new IngestPipeline({ fleet, buffer, onGpuEvents: deps.onGpuEvents });
  const sampleWindow = deps.sampleWindow ?? DEFAULT_SAMPLE_WINDOW;
  let connections = 0;

  /**
   * Counts a refusal; logs it at most once per minute per source address and kind (a flood of
   * bad tokens does not hide a node taken by another token), with the number held back.
   */
  const noteRefusal = (
    code: ErrorCode,
    kind: string,
    message: string,
    remote: string,
    fields: Record<string, unknown>,
  ) => {
    metrics.agentsRefused.inc({ code });
    const quiet = refusalLog.check(`${addressKey(remote)}|${kind}`, monoNow());
    if (!quiet) return;
    log.warn(
      { code, remote, ...fields, ...(quiet.suppressed > 0 ? { heldBack: quiet.suppressed } : {}) },
      `agent refused: ${message}` +
        (quiet.suppressed > 0 ? ` (${quiet.suppressed} more like it from ${remote} not logged)` : ''),
    );
  };

  /** Report rate limit per node; false: the caller acks RATE_LIMITED (counted, logged once a minute). */
  const allowReport = (socket: AgentSocket): boolean => {
    if (reportsByNode.take(socket.data.node, monoNow())) return true;
    metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'rate_limited' });
    const quiet = refusalLog.check(`${addressKey(socket.data.remote)}|report-rate`, monoNow());
    if (quiet) {
      log.warn(
        { node: socket.data.node, remote: socket.data.remote, heldBack: quiet.suppressed },
        `samples:report over the rate limit (${limits.reportsPerNode.perSecond}/s per node); refused with RATE_LIMITED`,
      );
    }
    return false;
  };
  const reportLimitMessage = `more than ${limits.reportsPerNode.perSecond} reports per second from this node; retry later`;

  /**
   * While storage refuses anyway (the backlog is at its bound), the refusal of a report before it
   * is validated — a resend then costs next to nothing, and the server's CPU goes to draining, not
   * to refusing. A replay the frame parser did not even decode (`shedReportOf`) is refused here;
   * else the estimate of its points decides, from the raw samples. A live report of one sample is
   * not refused here: it is validated and, refused by the pipeline, still updates the live view
   * (so the wall stays fresh). Null: go on and validate.
   */
  let bytesPerPoint = 0;
  const refuseUnchecked = (report: unknown): Refusal | null => {
    if (shedReportOf(report)) {
      metrics.reportsShed.inc({ stage: 'frame' });
      return (
        buffer.refuseEarly(1) ?? {
          ok: false,
          reason: buffer.spool ? 'spool_full' : 'backlog_full',
          message: 'storage is behind; keep the samples and retry later',
          retryAfterMs: buffer.retryHint(),
        }
      );
    }
    if (typeof report !== 'object' || report === null) return null;
    const { samples, replay } = report as { samples?: unknown; replay?: unknown };
    if (!Array.isArray(samples) || samples.length > LIMITS.maxSamplesPerBatch) return null;
    const points = estimatePoints(samples);
    const bytes = frameBytesOf(report);
    if (bytes !== null && points > 0) bytesPerPoint = Math.max(bytes / points, bytesPerPoint * 0.999);
    if (replay !== true && samples.length <= 1) return null;
    const refusal = buffer.refuseEarly(points);
    if (refusal) metrics.reportsShed.inc({ stage: 'envelope' });
    return refusal;
  };

  nsp.use((socket, next) => {
    const auth: unknown = socket.handshake.auth;
    const raw = (typeof auth === 'object' && auth !== null ? auth : {}) as Record<string, unknown>;
    const remote = remoteAddress(socket);
    const rawNode = typeof raw.node === 'string' ? raw.node.slice(0, 256) : null;
    const refuse = (code: ErrorCode, kind: string, message: string, fields: Record<string, unknown> = {}) => {
      noteRefusal(code, kind, message, remote, { node: rawNode, ...fields });
      next(connectError(code, message));
    };
    if (
      !(limits.exemptLoopback && isLoopback(remote)) &&
      !handshakesByAddress.take(addressKey(remote), monoNow())
    ) {
      refuse(
        'RATE_LIMITED',
        'address-rate',
        `too many agent handshakes from ${remote} (more than ${Math.round(limits.handshakesPerAddress.perSecond * 60)} a minute); retry later`,
      );
      return;
    }
    if (!authority.configured) {
      refuse(
        'UNAUTHORIZED',
        'token',
        'this server accepts no agent tokens: set GPUPULSE_AGENT_TOKENS=<token>[,<token>…] or agents: ' +
          'in GPUPULSE_ACCESS_FILE on the server',
      );
      return;
    }
    if (typeof raw.token !== 'string' || raw.token === '') {
      refuse('UNAUTHORIZED', 'token', 'missing agent token (handshake auth.token)');
      return;
    }
    if (raw.token.length > 512) {
      refuse('UNAUTHORIZED', 'token', 'invalid agent token');
      return;
    }
    const digest = tokenDigest(raw.token);
    const verdict = authority.authorize(digest, rawNode ?? '');
    if (!verdict.ok && verdict.reason === 'token') {
      refuse('UNAUTHORIZED', 'token', 'invalid agent token');
      return;
    }
    if (raw.protocolVersion !== PROTOCOL_VERSION) {
      refuse(
        'PROTOCOL_VERSION',
        'version',
        `protocol version mismatch: agent speaks ${JSON.stringify(raw.protocolVersion ?? null)}, ` +
          `server speaks ${PROTOCOL_VERSION}; upgrade the older side`,
      );
      return;
    }
    const parsed = AgentAuthSchema.safeParse(auth);
    if (!parsed.success) {
      refuse('VALIDATION', 'validation', `invalid handshake: ${describeZodError(parsed.error)}`);
      return;
    }
    const node = parsed.data.node;
    if (!verdict.ok) {
      refuse('UNAUTHORIZED', 'node', verdict.message);
      return;
    }
    const tokenId = digest.toString('hex');
    // Per node and token: a storm from another token exhausts its own bucket, not the holder's.
    if (!handshakesByNode.take(`${tokenId}\u0000${node}`, monoNow())) {
      refuse(
        'RATE_LIMITED',
        'node-rate',
        `too many handshakes for node ${node} (more than ${Math.round(limits.handshakesPerNode.perSecond * 60)} a minute); retry later`,
        { agent: verdict.name },
      );
      return;
    }
    const holder = byNode.get(node);
    if (holder && holder.data.tokenId !== tokenId) {
      refuse('UNAUTHORIZED', 'conflict', anotherTokenMessage(node), {
        agent: verdict.name,
        holder: { agent: holder.data.agentName, remote: holder.data.remote, connectionId: holder.id },
      });
      return;
    }
    socket.data.node = node;
    socket.data.agentVersion = parsed.data.agentVersion ?? null;
    socket.data.intervalMs = parsed.data.intervalMs ?? null;
    socket.data.connectionId = socket.id;
    socket.data.skewNoticeSent = false;
    socket.data.agentName = verdict.name;
    socket.data.tokenId = tokenId;
    socket.data.remote = remote;
    next();
  });

  // The access file changed: close connections whose token was removed or whose node it no longer covers.
  deps.access?.onChange(() => {
    for (const s of [...byNode.values()]) {
      const verdict = authority.authorize(Buffer.from(s.data.tokenId, 'hex'), s.data.node);
      if (verdict.ok) continue;
      const message =
        verdict.reason === 'token'
          ? `agent token '${s.data.agentName}' is no longer accepted (access file reloaded); connection closed`
          : `${verdict.message} (access file reloaded); connection closed`;
      metrics.agentsRefused.inc({ code: 'UNAUTHORIZED' });
      log.warn({ node: s.data.node, agent: s.data.agentName, remote: s.data.remote }, message);
      s.emit('server:notice', { level: 'error', code: 'UNAUTHORIZED', message });
      s.disconnect(true);
    }
  });

  nsp.on('connection', (socket) => {
    const { node } = socket.data;
    const slog = log.child({ node });
    const previous = byNode.get(node);
    if (previous && previous.data.tokenId !== socket.data.tokenId) {
      // Another token took the node between this handshake's check and now: the holder stays.
      const message = anotherTokenMessage(node);
      noteRefusal('UNAUTHORIZED', 'conflict', message, socket.data.remote, {
        node,
        agent: socket.data.agentName,
        holder: { agent: previous.data.agentName, remote: previous.data.remote, connectionId: previous.id },
      });
      socket.emit('server:notice', { level: 'error', code: 'UNAUTHORIZED', message });
      socket.disconnect(true);
      return;
    }
    connections++;
    metrics.agentsConnected.inc();
    byNode.set(node, socket);
    fleet.connect(node, socket.data.connectionId, socket.data.intervalMs ?? undefined);
    slog.info(
      {
        remote: socket.data.remote,
        agent: socket.data.agentName,
        agentVersion: socket.data.agentVersion,
        intervalMs: socket.data.intervalMs,
      },
      previous
        ? 'agent connected (same token: replacing the earlier connection of this node)'
        : 'agent connected',
    );
    if (previous) {
      slog.info(
        { remote: previous.data.remote, connectionId: previous.id },
        'earlier connection of this node replaced',
      );
      previous.emit('server:notice', {
        level: 'warn',
        code: 'REPLACED',
        message: `another agent with the same token connected as node ${node}; this connection is closed`,
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

    /** Once per connection: the agent's clock is off by more than `clockSkewMs` (live samples). */
    const noticeSkew = (accepted: readonly { ts: number }[], now: number) => {
      let latest = accepted[0]!.ts;
      for (const s of accepted) if (s.ts > latest) latest = s.ts;
      const skew = latest - now;
      if (Math.abs(skew) <= deps.clockSkewMs) return;
      socket.data.skewNoticeSent = true;
      slog.warn({ skewMs: skew }, 'agent clock differs from server clock');
      socket.emit('server:notice', {
        level: 'warn',
        code: 'CLOCK_SKEW',
        message: `agent clock is ${Math.abs(skew)} ms ${skew > 0 ? 'ahead of' : 'behind'} the server; run NTP/chrony on the node`,
      });
    };

    /** Answers a report that failed for an unexpected reason (INTERNAL: the agent resends). */
    const failInternal = (ack: (a: Ack<never>) => void, err: unknown) => {
      slog.error({ err }, 'samples:report handler failed');
      metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'internal' });
      try {
        ack(fail('INTERNAL', 'internal server error'));
      } catch {
        // the ack itself failed: nothing more to do
      }
    };

    /** The samples of a checked report go to the ingest pipeline; the ack says what was taken. */
    const take = (checked: CheckedReport, ack: (a: Ack<SamplesAckData>) => void) => {
      const now = clock.now();
      const { accepted, rejected, replay } = checked;
      for (const r of rejected) metrics.samplesRejected.inc({ code: r.code });
      if (rejected.length > 0 && !socket.data.rejectLogged) {
        socket.data.rejectLogged = true;
        slog.warn(
          { rejected: rejected.length, first: rejected[0] },
          'samples refused (invalid, or ts outside the window); the others of the report are taken (logged once per connection, counted in /metrics)',
        );
      }
      if (accepted.length === 0) {
        // Nothing to take: one VALIDATION ack, which agents of every version drop.
        metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'validation' });
        const first = rejected[0]!;
        const more = rejected.length > 1 ? ` (and ${rejected.length - 1} more)` : '';
        const where = first.code !== 'VALIDATION' || first.message.startsWith('(root)') ? ': ' : '.';
        ack(fail('VALIDATION', `samples.${first.index}${where}${first.message}${more}`));
        return;
      }
      const outcome = pipeline.ingest(node, accepted, replay);
      if (!outcome.ok) {
        // Acking would lose data: the agent keeps the samples in its spool and resends them.
        metrics.rejectedPayloads.inc({ event: 'samples:report', reason: outcome.reason });
        metrics.samplesRefused.inc({ reason: outcome.reason }, accepted.length);
        ack(fail(outcome.code, outcome.message, outcome.retryAfterMs));
        return;
      }
      metrics.samplesReceived.inc(accepted.length);
      if (!replay && !socket.data.skewNoticeSent) noticeSkew(accepted, now);
      const acked = new Array<number>(accepted.length);
      for (let i = 0; i < accepted.length; i++) acked[i] = accepted[i]!.seq;
      const answer = ok(
        rejected.length > 0 ? { acked, rejected, serverTime: now } : { acked, serverTime: now },
      );
      const replicated = deps.ackAfter?.() ?? null;
      if (replicated === null) ack(answer);
      else
        replicated.then(
          () => ack(answer),
          () => ack(answer),
        );
    };

    // Refuse early when storage refuses anyway, else validate (in slices), hand over to the ingest
    // pipeline, ack: nothing else happens here.
    socket.on('samples:report', (report, ack) => {
      metrics.sampleReports.inc();
      if (typeof ack !== 'function') {
        metrics.rejectedPayloads.inc({ event: 'samples:report', reason: 'no_ack' });
        slog.debug('samples:report without an ack callback ignored');
        return;
      }
      if (!allowReport(socket)) return ack(fail('RATE_LIMITED', reportLimitMessage, REPORT_RETRY_AFTER_MS));
      try {
        const early = refuseUnchecked(report);
        if (early) {
          metrics.rejectedPayloads.inc({ event: 'samples:report', reason: early.reason });
          ack(fail('UNAVAILABLE', early.message, early.retryAfterMs));
          return;
        }
        const check = startCheck(report, frameBytesOf(report), clock.now(), sampleWindow);
        if (!(check instanceof ReportCheck)) {
          const reason = check.code === 'TOO_LARGE' ? 'too_large' : 'validation';
          metrics.rejectedPayloads.inc({ event: 'samples:report', reason });
          slog.debug({ code: check.code, err: check.message }, 'samples:report refused');
          ack(fail(check.code, check.message));
          return;
        }
        // A slice at a time, other work (HTTP, acks, storage writes) between the slices.
        const step = () => {
          try {
            const before = check.checked;
            const checked = check.step(VALIDATION_SLICE_MS);
            metrics.samplesValidated.inc(check.checked - before);
            if (checked !== null) take(checked, ack);
            // Gone meanwhile: nobody to ack; the agent resends on its next connection.
            else if (socket.connected) setImmediate(step);
          } catch (err) {
            failInternal(ack, err);
          }
        };
        step();
      } catch (err) {
        failInternal(ack, err);
      }
    });

    // A frame that did not decode (invalid JSON, e.g. a bare NaN): counted, logged once per
    // connection, answered VALIDATION when it asked for an ack; the connection stays up.
    (socket as unknown as { on(ev: string, fn: (info: MalformedFrame, ack?: unknown) => void): void }).on(
      MALFORMED_FRAME_EVENT,
      (info, ack) => {
        metrics.malformedFrames.inc();
        if (!socket.data.malformedLogged) {
          socket.data.malformedLogged = true;
          slog.warn(
            { reason: info.reason, bytes: info.bytes },
            'malformed frame from agent (not valid Socket.IO/JSON); answered VALIDATION (logged once per connection, counted in /metrics)',
          );
        }
        if (typeof ack === 'function') {
          (ack as (a: unknown) => void)(
            fail('VALIDATION', `frame could not be decoded (${info.reason}): send JSON without NaN/Infinity`),
          );
        }
      },
    );

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

  return {
    connected: () => connections,
    shedReplay: (frameBytes) =>
      buffer.wouldRefuse(bytesPerPoint > 0 ? Math.max(1, Math.floor(frameBytes / bytesPerPoint)) : 1),
  };
}
