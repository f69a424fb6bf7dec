import type { Sample } from '@gpupulse/protocol';
import type { Logger } from '../logger.ts';

/** The parts of a sample a collector may contribute; the runner adds seq, ts and agent stats. */
export type SampleParts = Partial<
  Pick<
    Sample,
    | 'gpuCollector'
    | 'gpuError'
    | 'gpus'
    | 'host'
    | 'processes'
    | 'processesMode'
    | 'processesGone'
    | 'gpuEvents'
  >
>;

/**
 * Minimal collector contract. The runner owns policy: interval, timeout, counters, and what
 * happens on failure. A collector never imports the transport.
 */
export interface Collector {
  readonly name: string;
  /** Probe / warm up once before the first collect (may be slow; runs in the background). */
  start?(): Promise<void>;
  /** Current values. Throw (or reject) on failure; the runner counts it and uses `fallback`. */
  collect(): Promise<SampleParts>;
  /** What the sample gets when `collect` fails or times out. */
  fallback?(error: Error): SampleParts;
  /** Resolves once the collector has something to report (first GPU round), or after `timeoutMs`. */
  ready?(timeoutMs: number): Promise<void>;
  stop?(): Promise<void>;
  /**
   * The server may have missed samples (a new connection): report the complete state next time
   * (e.g. a full process list instead of a delta).
   */
  resync?(): void;
}

export interface CollectorDeps {
  logger: Logger;
  intervalMs: number;
}
