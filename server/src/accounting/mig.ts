/**
 * MIG-weighted accounting: a MIG instance counts as its fraction of the GPU's compute slices in
 * GPU-hours, live usage, energy and share — on any node, from what the agent reports
 * (`migModeCurrent`, `migDevices`, process `gpuUuid`), without Kubernetes.
 *
 * - Slices of a profile: a compute-instance profile `Nc.Mg.…` has N slices (`1c.3g.71gb` = 1), a
 *   GPU-instance profile `Mg.…` has M (`3g.40gb` = 3; `1g.10gb+me` = 1).
 * - Total compute slices of a GPU: `MIG_TOTAL_SLICES` by model name (7 on A100, H100, H200, H20,
 *   H800, GH200, B200, GB200; 4 on A30 and RTX PRO 6000 Blackwell); 7 when the model is unknown,
 *   never less than the slices of the listed devices.
 * - A process is placed on a MIG device: (1) its `gpuUuid` is the device's `MIG-…` uuid (CUDA
 *   with `CUDA_VISIBLE_DEVICES=MIG-…`, device plugins); (2) it carries `gpuInstanceId` (and
 *   `computeInstanceId`) that match the device; (3) otherwise (`nvidia-smi --query-compute-apps`
 *   names the parent GPU uuid in MIG mode) it shares the GPU instances whose memory is in use
 *   (≥ `MIG_MEMORY_IN_USE_MIB`), each counted with the slices of its GPU instance (`Mg`); when no
 *   device is known or none shows memory, the processes count the whole GPU (as before MIG).
 * - Processes on one device split its weight by their memory share (as on a whole GPU).
 */
import type { GpuProcess, MigDevice } from '@gpupulse/protocol';

/** Total compute slices by GPU model (substring of the name, first match wins). */
export const MIG_TOTAL_SLICES: ReadonlyArray<readonly [RegExp, number]> = [
  [/\bA30\b/i, 4],
  [/RTX PRO 6000/i, 4],
  [/\bA100\b/i, 7],
  [/\bH100\b/i, 7],
  [/\bH200\b/i, 7],
  [/\bH20\b/i, 7],
  [/\bH800\b/i, 7],
  [/\bGH200\b/i, 7],
  [/\bG?B200\b/i, 7],
  [/\bB300\b/i, 7],
];
export const DEFAULT_MIG_SLICES = 7;
/** A GPU instance whose memory use is at least this counts as held (empty instances show 9–17 MiB). */
export const MIG_MEMORY_IN_USE_MIB = 256;

/** Compute slices of a MIG profile, or null when the name is not a MIG profile. */
export function profileSlices(profile: string | null | undefined): number | null {
  if (!profile) return null;
  const m = /^(?:(\d+)c\.)?(\d+)g\./i.exec(profile.trim());
  if (!m) return null;
  const n = Number(m[1] ?? m[2]);
  return n > 0 ? n : null;
}

/** Slices of the GPU instance a profile lives in (`1c.3g.71gb` → 3). */
export function gpuInstanceSlices(profile: string | null | undefined): number | null {
  if (!profile) return null;
  const m = /^(?:\d+c\.)?(\d+)g\./i.exec(profile.trim());
  return m && Number(m[1]) > 0 ? Number(m[1]) : null;
}

export function totalSlices(name: string | null | undefined, devices: readonly MigDevice[] = []): number {
  let total = DEFAULT_MIG_SLICES;
  for (const [re, n] of MIG_TOTAL_SLICES) {
    if (name && re.test(name)) {
      total = n;
      break;
    }
  }
  const listed = devices.reduce((s, d) => s + (profileSlices(d.profile) ?? 0), 0);
  return Math.max(total, listed);
}

export interface MigGpu {
  uuid: string;
  name?: string;
  migModeCurrent?: boolean | null;
  migDevices?: readonly MigDevice[];
}

const isMig = (g: MigGpu): boolean => g.migModeCurrent === true && (g.migDevices?.length ?? 0) > 0;

/**
 * Each process's fraction of its (parent) GPU, given the processes' memory shares (summing to 1).
 * Not in MIG mode: the shares themselves.
 */
export function migWeights(
  gpu: MigGpu,
  processes: readonly GpuProcess[],
  shares: readonly number[],
): number[] {
  if (!isMig(gpu) || processes.length === 0) return [...shares];
  const devices = gpu.migDevices!;
  const total = totalSlices(gpu.name, devices);
  // Groups: a device (by index) or, for unplaced processes, the pool of held GPU instances.
  const placed: Array<number | null> = processes.map((p) => {
    const q = p;
    const byUuid = devices.findIndex((d) => d.uuid !== null && d.uuid === p.gpuUuid);
    if (byUuid >= 0) return byUuid;
    if (q.gpuInstanceId !== undefined && q.gpuInstanceId !== null) {
      const exact = devices.findIndex(
        (d) =>
          d.gpuInstanceId === q.gpuInstanceId &&
          (q.computeInstanceId === undefined ||
            q.computeInstanceId === null ||
            d.computeInstanceId === q.computeInstanceId),
      );
      if (exact >= 0) return exact;
    }
    return null;
  });
  const weights = new Array<number>(processes.length).fill(0);
  const split = (idx: number[], weight: number) => {
    const mem = idx.map((i) => processes[i]!.usedMemoryMiB);
    const known = mem.every((m) => typeof m === 'number' && m >= 0);
    const sum = known ? mem.reduce((s: number, m) => s + (m as number), 0) : 0;
    for (const [k, i] of idx.entries())
      weights[i] = sum > 0 ? (weight * (mem[k] as number)) / sum : weight / idx.length;
  };
  const byDevice = new Map<number, number[]>();
  const unplaced: number[] = [];
  placed.forEach((d, i) => {
    if (d === null) unplaced.push(i);
    else byDevice.set(d, [...(byDevice.get(d) ?? []), i]);
  });
  for (const [d, idx] of byDevice) split(idx, (profileSlices(devices[d]!.profile) ?? 1) / total);
  if (unplaced.length > 0) {
    // GPU instances holding memory, not already counted through a placed process.
    const claimedGi = new Set(
      [...byDevice.keys()].map((d) => devices[d]!.gpuInstanceId).filter((x) => x !== null),
    );
    const gis = new Map<string, number>();
    devices.forEach((d, i) => {
      if ((d.memoryUsedMiB ?? 0) < MIG_MEMORY_IN_USE_MIB) return;
      if (d.gpuInstanceId !== null && claimedGi.has(d.gpuInstanceId)) return;
      const key = d.gpuInstanceId !== null ? `gi${d.gpuInstanceId}` : `dev${i}`;
      gis.set(key, gpuInstanceSlices(d.profile) ?? profileSlices(d.profile) ?? 1);
    });
    const held = [...gis.values()].reduce((s, n) => s + n, 0);
    const used = [...byDevice.keys()].reduce((s, d) => s + (profileSlices(devices[d]!.profile) ?? 1), 0);
    const pool = held > 0 ? held / total : Math.max(0, (total - used) / total);
    split(unplaced, pool);
  }
  return weights;
}

/**
 * Processes grouped by the uuid of their physical GPU: a process on a `MIG-…` uuid goes to the GPU
 * that lists that MIG device (unknown MIG uuids stay under their own uuid).
 */
export function processesByGpu(
  gpus: readonly MigGpu[],
  processes: readonly GpuProcess[],
): Map<string, GpuProcess[]> {
  const parent = new Map<string, string>();
  for (const g of gpus) for (const d of g.migDevices ?? []) if (d.uuid) parent.set(d.uuid, g.uuid);
  const out = new Map<string, GpuProcess[]>();
  for (const p of processes) {
    const uuid = parent.get(p.gpuUuid) ?? p.gpuUuid;
    const list = out.get(uuid);
    if (list) list.push(p);
    else out.set(uuid, [p]);
  }
  return out;
}
