// Simulated agents with an agent's delivery rules, in one process, for fault tests and the soak:
// each node is its own Socket.IO connection to /agent, samples come from the simulator's fleet
// model (@gpupulse/agent's createSimFleet), and — unlike `gpupulse-sim`, which forgets what the
// server did not take — every sample is kept until the server acks or rejects it, then resent
// (bounded batches, after `retryAfterMs` for RATE_LIMITED / UNAVAILABLE), as protocol/README.md
// tells an agent to. Every sample is counted once: acked, rejected or still pending, per node.
import { createSimFleet } from '@gpupulse/agent';
import {
  AGENT_NAMESPACE,
  type AgentToServerEvents,
  type GpuProcess,
  PROTOCOL_VERSION,
  type Sample,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';

type AgentSocket = Socket<ServerToAgentEvents, AgentToServerEvents>;

export interface SimLoadOptions {
  url: string;
  token: string;
  nodes: number;
  gpusPerNode: number;
  intervalMs: number;
  prefix: string;
  seed?: number;
  /** Open the connections evenly over this many ms (default: all at once). */
  connectWithinMs?: number;
  /** Samples kept per node while the server does not take them (oldest dropped beyond; default 3600). */
  maxPending?: number;
  /** Largest report (default 500 samples). */
  maxBatch?: number;
  /** Ack timeout, ms (default 30 s): the report is sent again later. */
  ackTimeoutMs?: number;
  /** Keep the ts of every acked sample per node (for gap and loss reports). */
  trackTs?: boolean;
  /** Start sampling only once every node has connected (at most this many ms; default: at once). */
  holdSamplingUntilConnectedMs?: number;
}

export interface SimLoadTotals {
  nodes: number;
  connected: number;
  /** Nodes that were connected at least once. */
  everConnected: number;
  connectErrors: number;
  samples: number;
  acked: number;
  rejected: number;
  pending: number;
  /** Oldest samples dropped by a node's bounded queue (never expected in the tests). */
  droppedLocal: number;
  reports: number;
  ackTimeouts: number;
  /** Acks that failed as a whole or left samples untaken, by code. */
  refusals: Record<string, number>;
}

interface NodeState {
  name: string;
  socket: AgentSocket;
  pending: Map<number, Sample>;
  inflight: boolean;
  retryAt: number;
  /** Refused or timed-out reports in a row (exponential backoff, as the agent's transport). */
  failures: number;
  acked: number;
  ackedTs: number[];
  rejected: number;
  everConnected: boolean;
  lastProcesses?: string;
  lastFullAt: number;
  lastTs: number;
}

export interface SimLoad {
  nodeNames: readonly string[];
  totals(): SimLoadTotals;
  /** Acked samples per node (each acked sample holds one point per GPU and one host point). */
  ackedByNode(): Map<string, number>;
  /** The ts of every acked sample per node (`trackTs` only). */
  ackedTsByNode(): Map<string, number[]>;
  /** Stops producing samples (pending ones are still sent). */
  stopSampling(): void;
  /** Resolves when no sample is pending (or throws after `timeoutMs`). */
  drain(timeoutMs: number): Promise<void>;
  /** Disconnects everyone. */
  close(): void;
}

export function startSimLoad(o: SimLoadOptions): SimLoad {
  const fleet = createSimFleet({
    nodes: o.nodes,
    gpusPerNode: o.gpusPerNode,
    prefix: o.prefix,
    intervalMs: o.intervalMs,
    seed: o.seed ?? 42,
  });
  const maxPending = o.maxPending ?? 3600;
  const maxBatch = o.maxBatch ?? 500;
  const ackTimeoutMs = o.ackTimeoutMs ?? 30_000;
  const totals = {
    connectErrors: 0,
    samples: 0,
    droppedLocal: 0,
    reports: 0,
    ackTimeouts: 0,
    refusals: {} as Record<string, number>,
  };
  const refuse = (code: string, n = 1) => {
    totals.refusals[code] = (totals.refusals[code] ?? 0) + n;
  };
  let connected = 0;
  let closed = false;
  const nodes: NodeState[] = [];
  const connectTimers: NodeJS.Timeout[] = [];

  /** The agent's rule: the server's retry hint when it gave one, at least an exponential backoff. */
  const backoff = (n: NodeState, retryAfterMs = 0) => {
    n.failures++;
    const exp = Math.min(30_000, 500 * 2 ** (n.failures - 1)) * (0.5 + Math.random() / 2);
    n.retryAt = Date.now() + Math.max(exp, retryAfterMs);
  };

  const flush = (n: NodeState) => {
    if (n.inflight || !n.socket.connected || n.pending.size === 0 || Date.now() < n.retryAt) return;
    const batch = [...n.pending.values()].slice(0, maxBatch);
    n.inflight = true;
    totals.reports++;
    n.socket.timeout(ackTimeoutMs).emit('samples:report', { samples: batch }, (err, ack) => {
      n.inflight = false;
      if (err) {
        totals.ackTimeouts++;
        backoff(n);
        return;
      }
      if (!ack.ok) {
        refuse(ack.error.code);
        if (
          ack.error.code === 'RATE_LIMITED' ||
          ack.error.code === 'UNAVAILABLE' ||
          ack.error.code === 'INTERNAL'
        ) {
          backoff(n, ack.error.retryAfterMs);
        } else {
          // refused for good (VALIDATION, TOO_LARGE …): an agent drops these
          for (const s of batch) if (n.pending.delete(s.seq)) n.rejected++;
        }
        return;
      }
      for (const seq of ack.data.acked) {
        const s = n.pending.get(seq);
        if (!s) continue;
        n.pending.delete(seq);
        n.acked++;
        if (o.trackTs) n.ackedTs.push(s.ts);
      }
      for (const r of ack.data.rejected ?? []) if (r.seq !== null && n.pending.delete(r.seq)) n.rejected++;
      const untaken = batch.filter((s) => n.pending.has(s.seq)).length;
      if (untaken > 0) {
        refuse('NOT_TAKEN', untaken);
        backoff(n);
      } else {
        n.failures = 0;
        if (n.pending.size > 0) setImmediate(() => flush(n));
      }
    });
  };

  fleet.nodeNames.forEach((name, i) => {
    const socket: AgentSocket = io(`${o.url}${AGENT_NAMESPACE}`, {
      auth: {
        token: o.token,
        node: name,
        protocolVersion: PROTOCOL_VERSION,
        agentVersion: 'sim-load',
        intervalMs: o.intervalMs,
      },
      transports: ['websocket'],
      autoConnect: false,
      forceNew: true,
      timeout: 60_000,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
    });
    const n: NodeState = {
      name,
      socket,
      pending: new Map(),
      inflight: false,
      retryAt: 0,
      failures: 0,
      acked: 0,
      ackedTs: [],
      rejected: 0,
      everConnected: false,
      lastFullAt: 0,
      lastTs: 0,
    };
    socket.on('connect', () => {
      connected++;
      n.everConnected = true;
      n.inflight = false;
      n.lastProcesses = undefined; // the server may have missed changes: send the full list
      socket.timeout(10_000).emit('inventory:report', fleet.inventory(i), () => {});
      flush(n);
    });
    socket.on('disconnect', () => {
      connected--;
      n.inflight = false;
    });
    socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
      totals.connectErrors++;
      // refused by the middleware (e.g. RATE_LIMITED during a storm): try again like an agent
      if (!socket.active && !closed)
        setTimeout(() => !closed && socket.connect(), 1000 + Math.random() * 2000);
      if (err.data?.code) refuse(`connect:${err.data.code}`);
    });
    nodes.push(n);
    const delay = o.connectWithinMs ? Math.floor((i / o.nodes) * o.connectWithinMs) : 0;
    if (delay === 0) socket.connect();
    else connectTimers.push(setTimeout(() => socket.connect(), delay));
  });

  const signature = (ps: readonly GpuProcess[]) =>
    ps.map((p) => `${p.gpuUuid}/${p.pid}/${Math.round((p.usedMemoryMiB ?? 0) / 1024)}`).join('|');
  const sample = (i: number) => {
    const n = nodes[i]!;
    if (!n.everConnected) return; // an agent that never reached the server yet: nothing to compare
    const full = fleet.tick(i);
    if (full.ts <= n.lastTs) return; // never two samples of one node at the same instant
    n.lastTs = full.ts;
    const sig = signature(full.processes ?? []);
    const now = Date.now();
    let s: Sample;
    if (sig === n.lastProcesses && now - n.lastFullAt < 60_000) {
      const { processes: _unchanged, ...rest } = full;
      s = structuredClone(rest);
    } else {
      n.lastProcesses = sig;
      n.lastFullAt = now;
      s = structuredClone(full);
    }
    totals.samples++;
    n.pending.set(s.seq, s);
    if (n.pending.size > maxPending) {
      const oldest = n.pending.keys().next().value as number;
      n.pending.delete(oldest);
      totals.droppedLocal++;
    }
    flush(n);
  };

  // Sample on wall-clock interval boundaries, spread over the first ~100 ms (like gpupulse-sim).
  const spreadMs = Math.min(100, Math.floor(o.intervalMs / 10));
  let roundTimer: NodeJS.Timeout | null = null;
  let sampling = true;
  const schedule = () => {
    const now = Date.now();
    roundTimer = setTimeout(round, Math.floor(now / o.intervalMs) * o.intervalMs + o.intervalMs - now);
  };
  // A timer can fire a little before the boundary by the wall clock (timers run on the monotonic
  // clock); without this guard that gives two rounds, and two samples with nearly the same ts.
  let lastRound = -1;
  const holdUntil = Date.now() + (o.holdSamplingUntilConnectedMs ?? 0);
  const round = () => {
    if (!sampling) return;
    const boundary = Math.round(Date.now() / o.intervalMs);
    schedule();
    if (Date.now() < holdUntil && nodes.some((n) => !n.everConnected)) return;
    if (boundary === lastRound) return;
    lastRound = boundary;
    for (let i = 0; i < nodes.length; i++) {
      const delay = Math.floor((i / nodes.length) * spreadMs);
      if (delay === 0) sample(i);
      else setTimeout(() => sampling && sample(i), delay);
    }
  };
  schedule();
  // Retries (after retryAfterMs / untaken samples) even when no new sample comes.
  const retryTimer = setInterval(() => {
    for (const n of nodes) flush(n);
  }, 250);

  return {
    nodeNames: fleet.nodeNames,
    totals() {
      let acked = 0;
      let rejected = 0;
      let pending = 0;
      let everConnected = 0;
      for (const n of nodes) {
        acked += n.acked;
        rejected += n.rejected;
        pending += n.pending.size;
        if (n.everConnected) everConnected++;
      }
      return {
        nodes: nodes.length,
        connected,
        everConnected,
        acked,
        rejected,
        pending,
        ...totals,
        refusals: { ...totals.refusals },
      };
    },
    ackedByNode() {
      return new Map(nodes.map((n) => [n.name, n.acked]));
    },
    ackedTsByNode() {
      return new Map(nodes.map((n) => [n.name, [...n.ackedTs].sort((a, b) => a - b)]));
    },
    stopSampling() {
      sampling = false;
      if (roundTimer) clearTimeout(roundTimer);
    },
    async drain(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const pending = nodes.reduce((k, n) => k + n.pending.size + (n.inflight ? 1 : 0), 0);
        if (pending === 0) return;
        if (Date.now() > deadline)
          throw new Error(`sim-load: ${pending} samples/reports still pending after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    close() {
      closed = true;
      sampling = false;
      if (roundTimer) clearTimeout(roundTimer);
      clearInterval(retryTimer);
      for (const t of connectTimers) clearTimeout(t);
      for (const n of nodes) n.socket.disconnect();
    },
  };
}

/** Samples the server stored per node: `gpupulse_host` points (one per sample) with InfluxQL COUNT. */
export async function storedHostPointsByNode(
  query: (q: string) => Promise<{ tags?: Record<string, string>; values: unknown[][] }[]>,
  prefix: string,
): Promise<Map<string, number>> {
  const series = await query(
    `SELECT COUNT("uptime_seconds") FROM "gpupulse_host" WHERE "host" =~ /^${prefix}-/ GROUP BY "host"`,
  );
  return new Map(series.map((s) => [s.tags?.host ?? '', Number(s.values[0]?.[1] ?? 0)]));
}

/** GPU points per (node, GPU uuid): `nvidia_smi` COUNT of the always-written `state` field. */
export async function storedGpuPointsBySeries(
  query: (q: string) => Promise<{ tags?: Record<string, string>; values: unknown[][] }[]>,
  prefix: string,
): Promise<Map<string, number>> {
  const series = await query(
    `SELECT COUNT("state") FROM "nvidia_smi" WHERE "host" =~ /^${prefix}-/ GROUP BY "host", "uuid"`,
  );
  return new Map(series.map((s) => [`${s.tags?.host}/${s.tags?.uuid}`, Number(s.values[0]?.[1] ?? 0)]));
}
