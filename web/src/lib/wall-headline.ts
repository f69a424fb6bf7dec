import type { ClusterTotals } from '@gpupulse/protocol';

/** The wall's headline figures. `null` = not known (shown as "—", never as 0). */
export interface WallHeadline {
  /** Where the GPU figures come from: the server's per-second cluster totals (the browser computes none). */
  source: 'server';
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
