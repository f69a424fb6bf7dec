/**
 * Live per-project usage, computed from fleet state every tick (1 s): GPUs in use (fractional by
 * memory share), held-but-idle, share-weighted mean utilization, memory, power, users, jobs,
 * nodes; GPU-hours, idle GPU-hours and energy since the server's local midnight (integrated tick
 * by tick from the shares); and cluster totals. Every `pointIntervalMs` (10 s) the figures go to
 * storage as `gpupulse_project_usage` and `gpupulse_cluster_usage` points.
 *
 * Counted GPUs: those of `online` nodes whose state is `ok`; GPUs of offline nodes are `offline`,
 * those of stale nodes or with a stale/error GPU state are `unknown`. So the projects' `gpusInUse`
 * add up to the cluster's `gpusInUse` — except on GPUs in MIG mode, where a process counts its MIG
 * instance's fraction of the GPU (accounting/mig.ts); `cluster.gpuEquivalentsInUse` is the sum
 * that always matches the projects'.
 *
 * Fair share (accounting/share.ts): each project and institution gets this month's busy and
 * idle-held GPU-hours (month-to-date from the rollups, `periodUsage`) against its agreed share;
 * energy today comes with its CO2e (projects file `carbon:`) and the idle-held part apart.
 */
import type { ClusterTotals, InstitutionShare, ProjectsUsage, ProjectUsage } from '@gpupulse/protocol';
import type { PeriodUsage } from '../accounting/period-usage.ts';
import { co2eKg, periodAt, shareStatus } from '../accounting/share.ts';
import type { Clock } from '../clock.ts';
import { UNASSIGNED } from '../fleet/attribution.ts';
import type { FleetState } from '../fleet/fleet-state.ts';
import type { ProjectsConfig } from '../projects/projects-file.ts';
import type { MetricPoint } from '../storage/metric-store.ts';
import { clusterUsagePoint, projectUsagePoint } from '../storage/schema.ts';

export interface LiveUsageOptions {
  fleet: FleetState;
  projects: () => ProjectsConfig;
  clock: Clock;
  /** Receives the 10-s usage points. */
  sink?: (points: MetricPoint[]) => void;
  pointIntervalMs?: number;
  /** Longest gap integrated between two ticks (default 5 s; a stalled server does not invent usage). */
  maxGapMs?: number;
  /** Month-to-date GPU-hours per project from the rollups (fair share); absent: no share figures. */
  periodUsage?: () => PeriodUsage | null;
}

interface Today {
  gpuHours: number;
  idleGpuHours: number;
  energyKWh: number;
  idleEnergyKWh: number;
}

interface Work {
  inUse: number;
  idle: number;
  utilW: number;
  utilSum: number;
  mem: number;
  power: number;
  users: Set<string>;
  jobs: Set<string>;
  nodes: Set<string>;
}

const localDay = (t: number) => {
  const d = new Date(t);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
};

export class LiveUsage {
  private today = new Map<string, Today>();
  private day: string | null = null;
  private lastTick: number | null = null;
  private lastPoints = Number.NEGATIVE_INFINITY;
  private last: ProjectsUsage | null = null;
  private readonly pointIntervalMs: number;
  private readonly maxGapMs: number;

  constructor(private readonly opts: LiveUsageOptions) {
    this.pointIntervalMs = opts.pointIntervalMs ?? 10_000;
    this.maxGapMs = opts.maxGapMs ?? 5000;
  }

  /** The last computed figures (computes them once if none yet, without integrating). */
  latest(): ProjectsUsage {
    return this.last ?? this.compute(false);
  }

  /** One tick: computes, integrates today's totals over the time since the last tick, maybe writes points. */
  update(): ProjectsUsage {
    return this.compute(true);
  }

  private compute(integrate: boolean): ProjectsUsage {
    const now = this.opts.clock.now();
    const config = this.opts.projects();
    const day = localDay(now);
    if (integrate && day !== this.day) {
      this.today = new Map();
      this.day = day;
    }
    const dtH =
      integrate && this.lastTick !== null
        ? Math.min(Math.max(0, now - this.lastTick), this.maxGapMs) / 3_600_000
        : 0;
    if (integrate) this.lastTick = now;

    const work = new Map<string, Work>();
    const w = (p: string) => {
      let x = work.get(p);
      if (!x) {
        x = {
          inUse: 0,
          idle: 0,
          utilW: 0,
          utilSum: 0,
          mem: 0,
          power: 0,
          users: new Set(),
          jobs: new Set(),
          nodes: new Set(),
        };
        work.set(p, x);
      }
      return x;
    };
    for (const id of config.projects.keys()) w(id);
    w(UNASSIGNED);
    const c = {
      weighted: 0,
      total: 0,
      inUse: 0,
      idle: 0,
      free: 0,
      offline: 0,
      unknown: 0,
      utilN: 0,
      utilSum: 0,
      tempN: 0,
      tempSum: 0,
      power: 0,
      mem: 0,
    };
    this.opts.fleet.forEachGpu((g) => {
      c.total++;
      if (g.status === 'offline') {
        c.offline++;
        return;
      }
      const power = g.gpu.powerDrawWatts;
      if (power !== null) c.power += power;
      if (g.gpu.memoryUsedMiB !== null) c.mem += g.gpu.memoryUsedMiB;
      if (g.status !== 'online' || g.gpu.state !== 'ok') {
        c.unknown++;
        return;
      }
      const util = g.gpu.utilizationGpuPercent;
      if (util !== null) {
        c.utilN++;
        c.utilSum += util;
      }
      if (g.gpu.temperatureCelsius !== null) {
        c.tempN++;
        c.tempSum += g.gpu.temperatureCelsius;
      }
      if (g.shares.length === 0) {
        c.free++;
        return;
      }
      c.inUse++;
      if (g.idleHeld) c.idle++;
      for (const s of g.shares) {
        const x = w(s.project);
        // `weight`: the share of the GPU, or of its compute slices in MIG mode.
        x.inUse += s.weight;
        c.weighted += s.weight;
        if (g.idleHeld) x.idle += s.weight;
        if (util !== null) {
          x.utilW += s.weight;
          x.utilSum += s.weight * util;
        }
        if (g.gpu.memoryUsedMiB !== null) x.mem += s.share * g.gpu.memoryUsedMiB;
        if (power !== null) x.power += s.weight * power;
        if (s.user) x.users.add(s.user);
        if (s.job) x.jobs.add(s.job);
        x.nodes.add(g.node);
        if (dtH > 0) {
          const t = this.todayOf(s.project);
          t.gpuHours += s.weight * dtH;
          if (g.idleHeld) t.idleGpuHours += s.weight * dtH;
          if (power !== null) {
            t.energyKWh += (s.weight * power * dtH) / 1000;
            if (g.idleHeld) t.idleEnergyKWh += (s.weight * power * dtH) / 1000;
          }
        }
      }
    });

    const carbon = config.accounting.carbon;
    const month = this.opts.periodUsage?.() ?? null;
    const period = month?.period ?? periodAt(now, 'month');
    const centreGpus = c.total;
    const zero = { busyGpuHours: 0, idleHeldGpuHours: 0, energyKWh: 0, idleHeldEnergyKWh: 0 };
    const projects: ProjectUsage[] = [];
    for (const [id, x] of work) {
      const t = this.today.get(id);
      const m = month?.byProject.get(id) ?? zero;
      projects.push({
        project: id,
        gpusInUse: r4(x.inUse),
        gpusIdleHeld: r4(x.idle),
        meanUtilizationPercent: x.utilW > 0 ? r4(x.utilSum / x.utilW) : null,
        memoryUsedMiB: r4(x.mem),
        powerDrawWatts: r4(x.power),
        users: [...x.users].sort(),
        jobs: [...x.jobs].sort(),
        nodes: [...x.nodes].sort(),
        gpuHoursToday: r4(t?.gpuHours ?? 0),
        idleGpuHoursToday: r4(t?.idleGpuHours ?? 0),
        energyKWhToday: r4(t?.energyKWh ?? 0),
        quotaGpus: config.projects.get(id)?.quotaGpus ?? null,
        overQuota: (() => {
          const q = config.projects.get(id)?.quotaGpus;
          return q !== null && q !== undefined && r4(x.inUse) > q;
        })(),
        idleEnergyKWhToday: r4(t?.idleEnergyKWh ?? 0),
        co2eKgToday: r4(co2eKg(t?.energyKWh ?? 0, carbon)),
        share: month
          ? shareStatus({
              share: config.accounting.projectShares.get(id),
              period,
              busyGpuHours: m.busyGpuHours,
              idleHeldGpuHours: m.idleHeldGpuHours,
              centreGpus,
              now,
            })
          : null,
      });
    }
    const institutions: InstitutionShare[] = [];
    if (month) {
      for (const inst of config.meta.institutions) {
        const ids = [...config.projects.values()].filter((p) => p.institution === inst.id).map((p) => p.id);
        let busy = 0;
        let idle = 0;
        let projectsAgreed: number | null = null;
        for (const pid of ids) {
          const m = month.byProject.get(pid);
          busy += m?.busyGpuHours ?? 0;
          idle += m?.idleHeldGpuHours ?? 0;
          const ps = projects.find((p) => p.project === pid)?.share?.agreedGpuHours;
          if (ps !== null && ps !== undefined) projectsAgreed = (projectsAgreed ?? 0) + ps;
        }
        institutions.push({
          institution: inst.id,
          projects: ids,
          share: shareStatus({
            share: config.accounting.institutionShares.get(inst.id),
            period,
            busyGpuHours: busy,
            idleHeldGpuHours: idle,
            centreGpus,
            now,
          }),
          projectsAgreedGpuHours: projectsAgreed === null ? null : r4(projectsAgreed),
        });
      }
    }
    const cluster: ClusterTotals = {
      gpusTotal: c.total,
      gpusInUse: c.inUse,
      gpusIdleHeld: c.idle,
      gpusFree: c.free,
      gpusOffline: c.offline,
      gpusUnknown: c.unknown,
      meanUtilizationPercent: c.utilN > 0 ? r4(c.utilSum / c.utilN) : null,
      powerDrawWatts: r4(c.power),
      activeProjects: projects.filter((p) => p.project !== UNASSIGNED && p.gpusInUse > 0).length,
      gpuEquivalentsInUse: r4(c.weighted),
    };
    const usage: ProjectsUsage = {
      serverTime: now,
      projects,
      cluster,
      institutions,
      carbon: { gridGramsPerKWh: carbon.gridGramsPerKWh, pue: carbon.pue },
    };
    if (integrate) {
      this.last = usage;
      if (this.opts.sink && now - this.lastPoints >= this.pointIntervalMs) {
        this.lastPoints = now;
        const ts = Math.floor(now / 1000) * 1000;
        const points: MetricPoint[] = projects.map((p) =>
          projectUsagePoint(ts, {
            project: p.project,
            institution: config.projects.get(p.project)?.institution ?? null,
            gpusInUse: p.gpusInUse,
            gpusIdleHeld: p.gpusIdleHeld,
            utilizationMean: p.meanUtilizationPercent,
            memoryUsedMiB: p.memoryUsedMiB,
            powerDrawWatts: p.powerDrawWatts,
          }),
        );
        points.push(
          clusterUsagePoint(ts, {
            gpusTotal: c.total,
            gpusInUse: c.inUse,
            gpusIdleHeld: c.idle,
            gpusFree: c.free,
            gpusOffline: c.offline,
            utilizationMean: cluster.meanUtilizationPercent,
            temperatureMean: c.tempN > 0 ? c.tempSum / c.tempN : null,
            memoryUsedMiB: c.mem,
            powerDrawWatts: c.power,
          }),
        );
        this.opts.sink(points);
      }
    }
    return usage;
  }

  private todayOf(project: string): Today {
    let t = this.today.get(project);
    if (!t) {
      t = { gpuHours: 0, idleGpuHours: 0, energyKWh: 0, idleEnergyKWh: 0 };
      this.today.set(project, t);
    }
    return t;
  }
}

const r4 = (v: number) => Math.round(v * 10_000) / 10_000;
