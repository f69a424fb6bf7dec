// App factory: wires collectors → runner → queue → transport. main.ts picks the implementations.
import type { Inventory, Sample } from '@gpupulse/protocol';
import type { Collector } from './collectors/types.ts';
import type { Logger } from './logger.ts';
import { MemoryQueue, type SampleQueue } from './queue.ts';
import { Runner } from './runner.ts';
import { SocketTransport } from './transport.ts';
import { AGENT_VERSION } from './version.ts';

export interface AgentOptions {
  node: string;
  intervalMs: number;
  collectors: readonly Collector[];
  logger: Logger;
  /** Server to send to; without one the agent only collects (onSample still fires). */
  server?: {
    url: string;
    /** Servers in failover order (default: `[url]`). */
    urls?: readonly string[];
    /** PEM of a private CA for https/wss servers. */
    ca?: string;
    token: string;
    ackTimeoutMs?: number;
    reconnectInitialMs?: number;
    reconnectMaxMs?: number;
  };
  /** Unacked-sample store. Default: an in-memory queue of 3600 samples. */
  queue?: SampleQueue;
  /** Builds the inventory sent on each connection. */
  inventory?: () => Promise<Inventory>;
  /** Called with every sample (after it is queued). */
  onSample?: (sample: Sample) => void;
  collectorTimeoutMs?: number;
  /** First sequence number; default: where the queue says to continue (disk spool), else 0. */
  firstSeq?: number;
}

export interface Agent {
  start(): void;
  /** One sample now, after the collectors are ready (for --once). */
  collectOnce(readyTimeoutMs?: number): Promise<Sample>;
  /** Queue a sample for sending (used by --once with a server). */
  enqueue(sample: Sample): void;
  /** Waits until every queued sample is acked, up to timeoutMs; true when all were. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Stops collectors and child processes, flushes up to flushTimeoutMs, closes the connection. */
  stop(flushTimeoutMs?: number): Promise<void>;
  readonly queue: SampleQueue;
  readonly transport: SocketTransport | null;
  /** The sequence number the next sample gets. */
  readonly nextSeq: number;
}

export function createAgent(options: AgentOptions): Agent {
  const log = options.logger;
  const queue: SampleQueue = options.queue ?? new MemoryQueue();
  let resync = () => {};
  const transport = options.server
    ? new SocketTransport({
        url: options.server.url,
        urls: options.server.urls,
        ca: options.server.ca,
        token: options.server.token,
        node: options.node,
        intervalMs: options.intervalMs,
        agentVersion: AGENT_VERSION,
        logger: log.child({ component: 'transport' }),
        queue,
        inventory:
          options.inventory ??
          (async () => ({
            agentVersion: AGENT_VERSION,
            hostname: options.node,
            os: null,
            kernel: null,
            cpuModel: null,
            cpuCores: null,
            memoryTotalBytes: null,
            gpus: [],
          })),
        ackTimeoutMs: options.server.ackTimeoutMs,
        reconnectInitialMs: options.server.reconnectInitialMs,
        reconnectMaxMs: options.server.reconnectMaxMs,
        // The server may have missed deltas while we were away: the next sample carries full lists.
        onConnect: () => resync(),
      })
    : null;

  const enqueue = (sample: Sample) => {
    if (transport) {
      queue.push(sample);
      transport.notify();
    }
  };

  const runner = new Runner({
    collectors: options.collectors,
    intervalMs: options.intervalMs,
    logger: log.child({ component: 'runner' }),
    timeoutMs: options.collectorTimeoutMs,
    firstSeq: options.firstSeq ?? queue.nextSeq,
    stats: () => ({
      droppedSamples: queue.dropped,
      spoolSamples: queue.size,
      spoolBytes: queue.bytes,
    }),
    onSample: (sample) => {
      enqueue(sample);
      options.onSample?.(sample);
    },
  });

  resync = () => runner.resync();

  let stopped = false;
  return {
    queue,
    transport,
    get nextSeq() {
      return runner.nextSeq;
    },
    start() {
      runner.start();
      transport?.start();
    },
    collectOnce: (readyTimeoutMs) => runner.collectOnce(readyTimeoutMs),
    enqueue,
    flush: async (timeoutMs) => (transport ? transport.flush(timeoutMs) : true),
    async stop(flushTimeoutMs = 3_000) {
      if (stopped) return;
      stopped = true;
      await runner.stop();
      if (transport) {
        const all = transport.connected && (await transport.flush(flushTimeoutMs));
        if (!all && queue.size > 0) log.warn({ unsent: queue.size }, 'stopping with unsent samples');
        transport.close();
      }
      await queue.close?.();
    },
  };
}
