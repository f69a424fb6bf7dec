/**
 * `GET /api/v1/usage` rows gain CO2e (projects file `carbon:`) and, for `groupBy=project` or
 * `institution` with `period=week|month`, the fair share of that group in that period.
 */
import type { UsageResponse } from '@gpupulse/protocol';
import { co2eKg, periodAt, shareStatus } from '../accounting/share.ts';
import type { ProjectsConfig } from '../projects/projects-file.ts';

export function enrichUsage(u: UsageResponse, config: ProjectsConfig, centreGpus: number): UsageResponse {
  const carbon = config.accounting.carbon;
  const shares =
    u.groupBy === 'project'
      ? config.accounting.projectShares
      : u.groupBy === 'institution'
        ? config.accounting.institutionShares
        : null;
  const withShare = shares !== null && (u.period === 'week' || u.period === 'month');
  const r4 = (v: number) => Math.round(v * 10_000) / 10_000;
  return {
    ...u,
    carbon: { gridGramsPerKWh: carbon.gridGramsPerKWh, pue: carbon.pue },
    rows: u.rows.map((r) => ({
      ...r,
      co2eKg: r4(co2eKg(r.energyKWh, carbon)),
      ...(withShare
        ? {
            share: shareStatus({
              share: shares.get(r.key),
              period: periodAt(r.periodStart, u.period as 'week' | 'month'),
              busyGpuHours: r.busyGpuHours,
              idleHeldGpuHours: r.idleHeldGpuHours,
              centreGpus,
              now: u.to,
            }),
          }
        : {}),
    })),
  };
}
