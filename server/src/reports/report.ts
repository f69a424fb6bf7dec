/**
 * Reports per institution and for the whole centre, for a month (`2026-11`) or an ISO week
 * (`2026-W47`), computed from the rollup tiers through the usage query (1h tier for written
 * hours, 1m for the rest): busy / idle-held GPU-hours (MIG-weighted), share vs agreed, top
 * projects, a daily trend, energy with CO2e, the period before, and the nudges of the period.
 * Aggregated only: no user names.
 */
import type { Report, ReportNudges, ReportTotals } from '@gpupulse/protocol';
import { co2eKg, type PeriodRange, previousPeriod, shareStatus } from '../accounting/share.ts';
import { UNASSIGNED } from '../fleet/attribution.ts';
import { type HistoryDeps, queryUsage } from '../history/history-api.ts';
import type { ProjectsConfig } from '../projects/projects-file.ts';
import { ROLLUP_MEASUREMENTS } from '../storage/schema.ts';

export interface ReportDeps {
  history: HistoryDeps;
  projects: () => ProjectsConfig;
  /** GPUs of the centre (percentage shares): the fleet's GPU count. */
  centreGpus: () => number;
  now: () => number;
  /** Nudges of a period and their effect; absent or null: "no nudge data". */
  nudges?: (from: number, to: number, projects: readonly string[] | null) => Promise<ReportNudges | null>;
}

interface Acc {
  busy: number;
  idle: number;
  energy: number;
  idleEnergy: number;
}

const zero = (): Acc => ({ busy: 0, idle: 0, energy: 0, idleEnergy: 0 });
const r4 = (v: number) => Math.round(v * 10_000) / 10_000;

function totals(a: Acc, carbon: { gridGramsPerKWh: number; pue: number }): ReportTotals {
  const used = a.busy + a.idle;
  return {
    busyGpuHours: r4(a.busy),
    idleHeldGpuHours: r4(a.idle),
    gpuHours: r4(used),
    energyKWh: r4(a.energy),
    idleHeldEnergyKWh: r4(a.idleEnergy),
    co2eKg: r4(co2eKg(a.energy, carbon)),
    idleHeldCo2eKg: r4(co2eKg(a.idleEnergy, carbon)),
    busyPercent: used > 0 ? r4((a.busy / used) * 100) : null,
  };
}

const add = (
  into: Acc,
  r: { busyGpuHours: number; idleHeldGpuHours: number; energyKWh: number; idleHeldEnergyKWh?: number },
) => {
  into.busy += r.busyGpuHours;
  into.idle += r.idleHeldGpuHours;
  into.energy += r.energyKWh;
  into.idleEnergy += r.idleHeldEnergyKWh ?? 0;
};

export const NO_NUDGE_DATA: ReportNudges = {
  available: false,
  sent: null,
  snoozed: null,
  escalated: null,
  idleMinutesBefore: null,
  idleMinutesAfter: null,
};

export class ReportError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'VALIDATION' | 'NOT_FOUND',
    message: string,
  ) {
    super(message);
  }
}

/** The most GPUs seen in one hour of the period (cluster rollups), rounded up; 0 without data. */
async function observedGpus(deps: ReportDeps, p: PeriodRange, now: number): Promise<number> {
  const to = Math.min(p.end, now);
  if (to <= p.start) return 0;
  const series = await deps.history.backend.aggregate({
    measurement: ROLLUP_MEASUREMENTS.cluster['1h'],
    rp: deps.history.policies['1h'] ?? null,
    fields: [{ field: 'gpus_mean', fn: 'max' }],
    from: p.start,
    to,
    stepMs: to - p.start,
    offsetMs: p.start,
    fill: 'none',
  });
  let max = 0;
  for (const s of series) for (const r of s.rows) max = Math.max(max, r[1] ?? 0);
  return Math.ceil(max - 1e-9);
}

/** Usage rows per day and project over a period (up to now). */
async function dailyRows(deps: ReportDeps, p: PeriodRange, now: number) {
  const to = Math.min(p.end, now);
  if (to <= p.start) return [];
  return (
    await queryUsage(deps.history, { from: p.start, to, groupBy: 'project', period: 'day', format: 'json' })
  ).rows;
}

export async function computeReport(
  deps: ReportDeps,
  period: PeriodRange,
  institution: string | null,
): Promise<Report> {
  const now = deps.now();
  if (period.start > now) throw new ReportError(400, 'VALIDATION', `period ${period.label} has not begun`);
  const config = deps.projects();
  if (institution !== null && !config.meta.institutions.some((i) => i.id === institution)) {
    const known = config.meta.institutions.map((i) => i.id).join(', ') || 'none defined';
    throw new ReportError(404, 'NOT_FOUND', `unknown institution "${institution}" (known: ${known})`);
  }
  const carbon = config.accounting.carbon;
  const centreGpus = Math.max(deps.centreGpus(), await observedGpus(deps, period, now));
  const instOf = (project: string) => config.projects.get(project)?.institution ?? null;
  const inScope = (project: string) => institution === null || instOf(project) === institution;

  const [rows, prevRows] = await Promise.all([
    dailyRows(deps, period, now),
    dailyRows(deps, previousPeriod(period), now),
  ]);
  const byProject = new Map<string, Acc>();
  const byDay = new Map<number, Acc>();
  const all = zero();
  // Every project of the scope appears, also without use (its share is still reported).
  for (const p of config.projects.values()) if (inScope(p.id)) byProject.set(p.id, zero());
  for (const r of rows) {
    if (!inScope(r.key)) continue;
    const a = byProject.get(r.key) ?? zero();
    add(a, r);
    byProject.set(r.key, a);
    const d = byDay.get(r.periodStart) ?? zero();
    add(d, r);
    byDay.set(r.periodStart, d);
    add(all, r);
  }
  const prev = zero();
  for (const r of prevRows) if (inScope(r.key)) add(prev, r);

  const status = (share: Parameters<typeof shareStatus>[0]['share'], a: Acc) =>
    shareStatus({ share, period, busyGpuHours: a.busy, idleHeldGpuHours: a.idle, centreGpus, now });

  const projects = [...byProject]
    .filter(([id, a]) => id !== UNASSIGNED || a.busy + a.idle > 0)
    .map(([id, a]) => ({
      project: id,
      institution: instOf(id),
      totals: totals(a, carbon),
      share: status(config.accounting.projectShares.get(id), a),
    }))
    .sort((x, y) => y.totals.gpuHours - x.totals.gpuHours || (x.project < y.project ? -1 : 1));

  const institutions = config.meta.institutions
    .filter((i) => institution === null || i.id === institution)
    .map((i) => {
      const a = zero();
      let agreed: number | null = null;
      for (const p of projects) {
        if (p.institution !== i.id) continue;
        const acc = byProject.get(p.project)!;
        a.busy += acc.busy;
        a.idle += acc.idle;
        a.energy += acc.energy;
        a.idleEnergy += acc.idleEnergy;
        if (p.share.agreedGpuHours !== null) agreed = (agreed ?? 0) + p.share.agreedGpuHours;
      }
      return {
        institution: i.id,
        totals: totals(a, carbon),
        share: status(config.accounting.institutionShares.get(i.id), a),
        projectsAgreedGpuHours: agreed === null ? null : r4(agreed),
      };
    });

  const scopeShare =
    institution !== null
      ? institutions[0]!.share
      : // The whole centre: used vs its capacity (100 % of the centre).
        status({ percent: 100 }, all);

  const trend = [...byDay.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([start, a]) => ({ start, totals: totals(a, carbon) }));

  const scopeProjects = institution === null ? null : projects.map((p) => p.project);
  let nudges = NO_NUDGE_DATA;
  if (deps.nudges) {
    try {
      nudges = (await deps.nudges(period.start, Math.min(period.end, now), scopeProjects)) ?? NO_NUDGE_DATA;
    } catch {
      nudges = NO_NUDGE_DATA;
    }
  }
  return {
    period: period.label,
    kind: period.kind,
    from: period.start,
    to: period.end,
    complete: now >= period.end,
    generatedAt: now,
    institution,
    carbon: { gridGramsPerKWh: carbon.gridGramsPerKWh, pue: carbon.pue },
    centreGpus,
    totals: totals(all, carbon),
    share: scopeShare,
    institutions,
    projects,
    trend,
    previous: { period: previousPeriod(period).label, totals: totals(prev, carbon) },
    nudges,
  };
}
