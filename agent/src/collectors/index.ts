// The explicit collector registry: main.ts (or a test) builds this list; nothing registers itself.
import type { Logger } from '../logger.ts';
import { createHostCollector } from './host/index.ts';
import {
  createNvidiaSmiGpuCollector,
  createNvidiaSmiProcessCollector,
  NvidiaSmi,
  type NvidiaSmiOptions,
} from './nvidia-smi/collector.ts';
import type { Collector } from './types.ts';

export type { Collector, SampleParts } from './types.ts';

export interface CollectorSetOptions {
  nvidiaSmi: string;
  intervalMs: number;
  logger: Logger;
  /** Overrides for the nvidia-smi timeouts (tests). */
  nvidiaSmiOptions?: Partial<NvidiaSmiOptions>;
  /** Leave out the host collector (tests that only look at GPUs). */
  host?: boolean;
}

export interface CollectorSet {
  collectors: Collector[];
  /** The shared nvidia-smi state (inventory: versions and GPU list). */
  nvidiaSmi: NvidiaSmi;
}

export function createCollectors(options: CollectorSetOptions): CollectorSet {
  const smi = new NvidiaSmi({
    nvidiaSmi: options.nvidiaSmi,
    intervalMs: options.intervalMs,
    logger: options.logger.child({ component: 'nvidia-smi' }),
    ...options.nvidiaSmiOptions,
  });
  const collectors: Collector[] = [createNvidiaSmiGpuCollector(smi), createNvidiaSmiProcessCollector(smi)];
  if (options.host !== false) collectors.push(createHostCollector());
  return { collectors, nvidiaSmi: smi };
}
