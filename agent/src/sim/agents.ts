// Simulated nodes as real agents: for each node of the fleet model, the agent's own wiring
// (createAgent: Runner → bounded queue → SocketTransport) with simulated collectors in place of
// nvidia-smi and /proc. Each node is its own Socket.IO connection with the agent's handshake,
// inventory, acks, resends, backoff, replay pacing and backpressure handling — the load a
// simulated fleet puts on a server is the real agents' load.
import { type Agent, createAgent } from '../agent.ts';
import type { Logger } from '../logger.ts';
import { MemoryQueue } from '../queue.ts';
import { createSimCollectors } from './collectors.ts';
import type { SimFleet } from './fleet.ts';

/** Unacked samples a simulated node keeps (a minute at 1 Hz): 1,000 nodes stay small in an outage. */
export const DEFAULT_SIM_QUEUE = 60;

export interface SimAgentsOptions {
  fleet: SimFleet;
  /** Server base URL(s), comma-separated for failover like the agent's --server. */
  server: string;
  token: string;
  intervalMs: number;
  /** The agents' logger (each gets a child with its node name). */
  logger: Logger;
  /** Unacked samples kept per node (default 60); the oldest beyond it are dropped and counted. */
  queueCapacity?: number;
}

export interface SimAgentStats {
  nodes: number;
  connected: number;
  /** Samples produced (each node's runner, one per interval). */
  sent: number;
  /** Samples acked by the server. */
  acked: number;
  /** Samples the server refused for good (dropped by the agents). */
  rejected: number;
  /** Reports the server did not take for now (UNAVAILABLE, RATE_LIMITED, INTERNAL): kept and resent. */
  refused: number;
  /** Samples waiting in the agents' queues. */
  queued: number;
  /** Samples dropped by the agents (queue bound, refused for good). */
  dropped: number;
}

export interface SimAgents {
  readonly agents: readonly Agent[];
  stats(): SimAgentStats;
  /** Stops every agent (flushes up to flushTimeoutMs, in parallel). */
  stop(flushTimeoutMs?: number): Promise<void>;
}

export function startSimAgents(options: SimAgentsOptions): SimAgents {
  const urls = options.server
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter((s) => s !== '');
  let produced = 0;
  const agents = options.fleet.nodeNames.map((node, i) =>
    createAgent({
      node,
      intervalMs: options.intervalMs,
      collectors: createSimCollectors(options.fleet, i),
      logger: options.logger.child({ node }),
      server: { url: urls[0] as string, urls, token: options.token },
      queue: new MemoryQueue(options.queueCapacity ?? DEFAULT_SIM_QUEUE),
      inventory: async () => options.fleet.inventory(i),
      onSample: () => {
        produced++;
      },
    }),
  );
  for (const a of agents) a.start();
  return {
    agents,
    stats() {
      const s: SimAgentStats = {
        nodes: agents.length,
        connected: 0,
        sent: produced,
        acked: 0,
        rejected: 0,
        refused: 0,
        queued: 0,
        dropped: 0,
      };
      for (const a of agents) {
        const t = a.transport;
        if (t) {
          if (t.connected) s.connected++;
          s.acked += t.acked;
          s.rejected += t.rejected;
          s.refused += t.refused;
        }
        s.queued += a.queue.size;
        s.dropped += a.queue.dropped;
      }
      return s;
    },
    async stop(flushTimeoutMs = 500) {
      await Promise.all(agents.map((a) => a.stop(flushTimeoutMs)));
    },
  };
}
