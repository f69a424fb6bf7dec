import type { Localized, NodeView, ProjectInfo, ProjectsMeta, ProjectUsage } from '@gpupulse/protocol';
import { BUSY_THRESHOLD_PERCENT, currentUtilization } from './fleet-state.ts';

/** A project's display name in the locale: that language, else the other, else the id. */
export function localizedName(name: Localized | undefined, locale: string, fallback: string): string {
  if (!name) return fallback;
  const own = locale.startsWith('ko') ? name.ko : name.en;
  return own || name.en || name.ko || fallback;
}

/**
 * Live per-project usage computed in the browser from the fleet view, for servers that don't
 * send `projects:usage` yet. GPU-hours today are unknown here (0, flagged by the caller).
 */
export function usageFromFleet(nodes: Iterable<NodeView>, meta: ProjectsMeta | null): ProjectUsage[] {
  const quota = new Map<string, number | null>((meta?.projects ?? []).map((p) => [p.id, p.quotaGpus]));
  interface Acc {
    u: ProjectUsage;
    utilSum: number;
    utilCount: number;
    users: Set<string>;
    jobs: Set<string>;
    nodes: Set<string>;
  }
  const by = new Map<string, Acc>();
  for (const node of nodes) {
    if (node.status === 'offline') continue;
    for (const gpu of node.gpus) {
      const id = gpu.project;
      if (id === null || id === undefined) continue;
      let a = by.get(id);
      if (!a) {
        a = {
          u: {
            project: id,
            gpusInUse: 0,
            gpusIdleHeld: 0,
            meanUtilizationPercent: null,
            memoryUsedMiB: 0,
            powerDrawWatts: 0,
            users: [],
            jobs: [],
            nodes: [],
            gpuHoursToday: 0,
            idleGpuHoursToday: 0,
            energyKWhToday: 0,
            quotaGpus: quota.get(id) ?? null,
          },
          utilSum: 0,
          utilCount: 0,
          users: new Set(),
          jobs: new Set(),
          nodes: new Set(),
        };
        by.set(id, a);
      }
      a.u.gpusInUse++;
      if (gpu.idleHeld) a.u.gpusIdleHeld++;
      const util = currentUtilization(node.status, gpu);
      if (util !== null) {
        a.utilSum += util;
        a.utilCount++;
      }
      a.u.memoryUsedMiB += gpu.memoryUsedMiB ?? 0;
      a.u.powerDrawWatts += gpu.powerDrawWatts ?? 0;
      for (const user of gpu.users ?? []) a.users.add(user);
      for (const job of gpu.jobs ?? []) a.jobs.add(job);
      a.nodes.add(node.node);
    }
  }
  return [...by.values()].map((a) => ({
    ...a.u,
    meanUtilizationPercent: a.utilCount > 0 ? a.utilSum / a.utilCount : null,
    users: [...a.users].sort(),
    jobs: [...a.jobs].sort(),
    nodes: [...a.nodes].sort(),
  }));
}

/** GPUs that are busy (≥ threshold) but have no project at all: shown as a hint, not a project. */
export function countBusyWithoutProject(nodes: Iterable<NodeView>): number {
  let n = 0;
  for (const node of nodes)
    for (const gpu of node.gpus) {
      const u = currentUtilization(node.status, gpu);
      if (gpu.project === null && u !== null && u >= BUSY_THRESHOLD_PERCENT) n++;
    }
  return n;
}

export type ProjectSortKey =
  | 'project'
  | 'institution'
  | 'gpusInUse'
  | 'gpusIdleHeld'
  | 'meanUtilizationPercent'
  | 'memoryUsedMiB'
  | 'powerDrawWatts'
  | 'users'
  | 'jobs'
  | 'gpuHoursToday'
  | 'quota';

export interface ProjectRow {
  id: string;
  name: string;
  color: string;
  institution: string | null;
  info: ProjectInfo | null;
  usage: ProjectUsage;
  /** gpusInUse / quotaGpus, or null without a quota. */
  quotaFraction: number | null;
}

function sortValue(row: ProjectRow, key: ProjectSortKey): number | string | null {
  switch (key) {
    case 'project':
      return row.name;
    case 'institution':
      return row.institution;
    case 'users':
      return row.usage.users?.length ?? null;
    case 'jobs':
      return row.usage.jobs?.length ?? null;
    case 'quota':
      return row.quotaFraction;
    default:
      return row.usage[key];
  }
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Sorted copy; nulls always last; ties by name. `unassigned` sorts like any other row. */
export function sortProjectRows(
  rows: readonly ProjectRow[],
  key: ProjectSortKey,
  dir: 'asc' | 'desc',
): ProjectRow[] {
  const sign = dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const va = sortValue(a, key);
    const vb = sortValue(b, key);
    if (va === null && vb !== null) return 1;
    if (vb === null && va !== null) return -1;
    let c = 0;
    if (typeof va === 'string' && typeof vb === 'string') c = collator.compare(va, vb);
    else if (typeof va === 'number' && typeof vb === 'number') c = va - vb;
    return c !== 0 ? c * sign : collator.compare(a.name, b.name);
  });
}
