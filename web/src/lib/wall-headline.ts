import type { ClusterTotals, NodeView } from '@gpupulse/protocol';
import { BUSY_THRESHOLD_PERCENT, currentUtilization } from './fleet-state.ts';

/** The wall's headline figures. `null` = not known (shown as "—", never as 0). */
export interface WallHeadline {
  /** Where the GPU figures come from: the server's per-second cluster totals, or the browser's fleet view. */
  source: 'server' | 'fleet';
  gpusTotal: number;
  /** In use: a process holds the GPU (or, without process data, utilization ≥ 5 %). */
  gpusBusy: number;
  gpusIdleHeld: number;
  gpusFree: number;
  gpusOffline: number;
  gpusUnknown: number;
  meanUtilizationPercent: number | null;
  powerKilowatts: number | null;
  activeProjects: number | null;
  firingAlerts: number | null;
}

/** Headline from the server's cluster totals (the same figures every dashboard sees). */
export function headlineFromTotals(totals: ClusterTotals, firingAlerts: number | null): WallHeadline {
  return {
    source: 'server',
    gpusTotal: totals.gpusTotal,
    gpusBusy: totals.gpusInUse,
    gpusIdleHeld: totals.gpusIdleHeld,
    gpusFree: totals.gpusFree,
    gpusOffline: totals.gpusOffline,
    gpusUnknown: totals.gpusUnknown,
    meanUtilizationPercent: totals.meanUtilizationPercent,
    powerKilowatts: totals.powerDrawWatts / 1000,
    activeProjects: totals.activeProjects,
    firingAlerts,
  };
}

/**
 * Headline computed in the browser from the fleet, while the server sends no totals. A GPU is
 * in use when a process holds it (project or process count known), else when it is busy.
 */
export function headlineFromFleet(nodes: Iterable<NodeView>, firingAlerts: number | null): WallHeadline {
  const h: WallHeadline = {
    source: 'fleet',
    gpusTotal: 0,
    gpusBusy: 0,
    gpusIdleHeld: 0,
    gpusFree: 0,
    gpusOffline: 0,
    gpusUnknown: 0,
    meanUtilizationPercent: null,
    powerKilowatts: null,
    activeProjects: null,
    firingAlerts,
  };
  let utilSum = 0;
  let utilCount = 0;
  let watts = 0;
  let wattsCount = 0;
  const projects = new Set<string>();
  let projectInfo = false;
  for (const node of nodes) {
    for (const gpu of node.gpus) {
      h.gpusTotal++;
      if (node.status === 'offline') {
        h.gpusOffline++;
        continue;
      }
      if (gpu.project !== null && gpu.project !== undefined) {
        projectInfo = true;
        if (gpu.project !== 'unassigned') projects.add(gpu.project);
      }
      const util = currentUtilization(node.status, gpu);
      if (util !== null) {
        utilSum += util;
        utilCount++;
      }
      if (node.status === 'online' && gpu.powerDrawWatts !== null) {
        watts += gpu.powerDrawWatts;
        wattsCount++;
      }
      const held = gpu.project !== null || (gpu.processCount ?? 0) > 0;
      if (gpu.idleHeld === true) h.gpusIdleHeld++;
      else if (util === null && !held) h.gpusUnknown++;
      else if (held || (util !== null && util >= BUSY_THRESHOLD_PERCENT)) h.gpusBusy++;
      else h.gpusFree++;
    }
  }
  if (utilCount > 0) h.meanUtilizationPercent = utilSum / utilCount;
  if (wattsCount > 0) h.powerKilowatts = watts / 1000;
  h.activeProjects = projectInfo ? projects.size : null;
  return h;
}
