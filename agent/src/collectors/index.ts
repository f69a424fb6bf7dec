// The explicit collector registry: main.ts (or a test) builds this list; nothing registers itself.
import type { Logger } from '../logger.ts';
import { createHostCollector } from './host/index.ts';
import {
  createNvidiaSmiGpuCollector,
  createNvidiaSmiProcessCollector,
  NvidiaSmi,
  type NvidiaSmiOptions,
  type ProcessCollectorOptions,
} from './nvidia-smi/collector.ts';
import { ProcReader } from './nvidia-smi/procfs.ts';
import type { Collector } from './types.ts';
import { createXidCollector } from './xid/index.ts';

export type { Collector, SampleParts } from './types.ts';

export interface CollectorSetOptions {
  nvidiaSmi: string;
  intervalMs: number;
  logger: Logger;
  /** Overrides for the nvidia-smi timeouts (tests). */
  nvidiaSmiOptions?: Partial<NvidiaSmiOptions>;
  /** Leave out the host collector (tests that only look at GPUs). */
  host?: boolean;
  /** Environment variables copied from GPU processes into `GpuProcess.env`. */
  projectEnv?: readonly string[];
  /** Kernel log followed for XID errors (default /dev/kmsg); null: no XID collector. */
  kmsg?: string | null;
  /** Overrides for the process collector (tests). */
  processOptions?: ProcessCollectorOptions;
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
  const proc = new ProcReader({ projectEnv: options.projectEnv });
  const collectors: Collector[] = [
    createNvidiaSmiGpuCollector(smi),
    createNvidiaSmiProcessCollector(smi, { proc, ...options.processOptions }),
  ];
  if (options.host !== false) collectors.push(createHostCollector());
  if (options.kmsg !== null)
    collectors.push(
      createXidCollector({
        path: options.kmsg ?? '/dev/kmsg',
        logger: options.logger.child({ component: 'xid' }),
        gpuByPci: () => smi.gpuByPci(),
      }),
    );
  return { collectors, nvidiaSmi: smi };
}
