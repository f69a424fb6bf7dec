import type { GpuProcess } from '@gpupulse/protocol';
import { type MigGpu, migWeights } from '../accounting/mig.ts';

/**
 * Attribution seam: which project a GPU's usage belongs to, given the processes on it.
 * Returns null when the GPU has no process. Kept for callers that only need one project per GPU;
 * the server itself uses `Attribution` (one project per process, shares per GPU).
 */
export type AttributeFn = (
  node: string,
  gpu: { uuid: string; index: number },
  processes: readonly GpuProcess[],
) => string | null;

export const UNASSIGNED = 'unassigned';

export const attributeUnassigned: AttributeFn = (_node, _gpu, processes) =>
  processes.length > 0 ? UNASSIGNED : null;

/** Which rule attributed a process (highest precedence first); `none`: unassigned. */
export type AttributionRule =
  | 'env'
  | 'slurmAccount'
  | 'k8sNamespace'
  | 'user'
  | 'group'
  | 'gpu'
  | 'node'
  | 'none';

/** Maps one process to one project (`unassigned` when no rule matches). */
export interface Attribution {
  projectOf(
    node: string,
    gpu: { uuid: string; index: number },
    process: GpuProcess,
  ): { project: string; rule: AttributionRule };
}

/** One process's part of a GPU. The shares of a GPU's processes sum to 1. */
export interface ProcessShare {
  process: GpuProcess;
  project: string;
  rule: AttributionRule;
  share: number;
  /**
   * The process's fraction of the physical GPU for GPU-hours, usage and energy: `share` on a whole
   * GPU; on a GPU in MIG mode its MIG instance's fraction of the compute slices (accounting/mig.ts).
   */
  weight: number;
  user: string | null;
  job: string | null;
}

export const unassignedAttribution: Attribution = {
  projectOf: () => ({ project: UNASSIGNED, rule: 'none' }),
};

/** Adapts a per-GPU `AttributeFn` (each process gets what the function says for it alone). */
export function attributionFromFn(fn: AttributeFn): Attribution {
  return { projectOf: (node, gpu, p) => ({ project: fn(node, gpu, [p]) ?? UNASSIGNED, rule: 'none' }) };
}

/** The user a process is counted under: its user name, else Slurm's user, else `uid:<n>`; null when unknown. */
export function processUser(p: GpuProcess): string | null {
  if (p.user) return p.user;
  if (p.slurmUser) return p.slurmUser;
  if (p.uid !== null && p.uid !== undefined) return `uid:${p.uid}`;
  return null;
}

/** The job a process belongs to: Slurm job id, else `namespace/pod-uid`, else the short container id. */
export function processJob(p: GpuProcess): string | null {
  if (p.slurmJobId) return p.slurmJobId;
  if (p.k8sPodUid) return p.k8sNamespace ? `${p.k8sNamespace}/${p.k8sPodUid}` : p.k8sPodUid;
  if (p.containerId) return p.containerId.slice(0, 12);
  return null;
}

/**
 * Split rule: each process's share of its GPU is its share of the GPU memory used by all the
 * GPU's processes; when any process's memory is unknown (null) or all use 0, the GPU is split
 * equally. Shares always sum to 1, so per-project sums equal the cluster total.
 */
export function memoryShares(processes: readonly GpuProcess[]): number[] {
  const n = processes.length;
  if (n === 0) return [];
  let total = 0;
  for (const p of processes) {
    const m = p.usedMemoryMiB;
    if (m === null || m === undefined || !Number.isFinite(m) || m < 0) return processes.map(() => 1 / n);
    total += m;
  }
  if (total <= 0) return processes.map(() => 1 / n);
  return processes.map((p) => (p.usedMemoryMiB as number) / total);
}

/** Every process of one GPU with its project and share. */
export function splitGpu(
  attribution: Attribution,
  node: string,
  gpu: { uuid: string; index: number } & Partial<MigGpu>,
  processes: readonly GpuProcess[],
): ProcessShare[] {
  const shares = memoryShares(processes);
  const weights = migWeights(gpu, processes, shares);
  return processes.map((p, i) => {
    const { project, rule } = attribution.projectOf(node, gpu, p);
    return {
      process: p,
      project,
      rule,
      share: shares[i]!,
      weight: weights[i]!,
      user: processUser(p),
      job: processJob(p),
    };
  });
}

/** Shares summed per project (insertion order: first process first). */
export function projectShares(shares: readonly ProcessShare[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of shares) out.set(s.project, (out.get(s.project) ?? 0) + s.share);
  return out;
}

/** The project with the largest share (ties: the one seen first); null without processes. */
export function topProject(shares: readonly ProcessShare[]): string | null {
  let best: string | null = null;
  let bestShare = -1;
  for (const [project, share] of projectShares(shares)) {
    if (share > bestShare + 1e-12) {
      best = project;
      bestShare = share;
    }
  }
  return best;
}
