import type { GpuProcess } from '@gpupulse/protocol';

/**
 * Attribution seam: which project a GPU's usage belongs to, given the processes on it.
 * Returns null when the GPU has no process. The rules from the projects file
 * (GPUPULSE_PROJECTS: Slurm account, Kubernetes namespace, user, environment variable …) will
 * plug in here; until then every process is `unassigned` (usage is never dropped).
 */
export type AttributeFn = (
  node: string,
  gpu: { uuid: string; index: number },
  processes: readonly GpuProcess[],
) => string | null;

export const UNASSIGNED = 'unassigned';

export const attributeUnassigned: AttributeFn = (_node, _gpu, processes) =>
  processes.length > 0 ? UNASSIGNED : null;
