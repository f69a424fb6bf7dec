import { z } from 'zod';

/** A localized display string: `{ en, ko }` (either may be missing; fall back to the other, then the id). */
export const LocalizedSchema = z.object({ en: z.string().optional(), ko: z.string().optional() });
export type Localized = z.infer<typeof LocalizedSchema>;

/** A project as the projects file describes it (no match rules: those stay on the server). */
export const ProjectInfoSchema = z.object({
  id: z.string(),
  name: LocalizedSchema,
  institution: z.string().nullable(),
  partner: z.string().nullable().optional(),
  area: z.string().nullable(),
  color: z.string().nullable(),
  owner: z.string().nullable(),
  /** GPU quota (GPUs), if any. */
  quotaGpus: z.number().nullable(),
});
export type ProjectInfo = z.infer<typeof ProjectInfoSchema>;

export const InstitutionInfoSchema = z.object({ id: z.string(), name: LocalizedSchema });
export type InstitutionInfo = z.infer<typeof InstitutionInfoSchema>;
export const AreaInfoSchema = InstitutionInfoSchema;
export type AreaInfo = z.infer<typeof AreaInfoSchema>;

/**
 * Fair share of a project or institution over one period (month or ISO week, server time zone):
 * busy and idle-held GPU-hours used (idle-held counts against the holder) vs the agreed share.
 * MIG instances count as their fraction of the GPU's compute slices. The server decides every
 * derived state (`overShare`, `overPace`); dashboards only draw it.
 */
export const ShareStatusSchema = z.object({
  period: z.enum(['month', 'week']),
  periodStart: z.number(),
  periodEnd: z.number(),
  /** Agreed GPU-hours for the period (a monthly share scaled to the period); null: no share agreed. */
  agreedGpuHours: z.number().nullable(),
  /** The agreement as written: `{ gpuHoursPerMonth }` or `{ percent }` of the centre. */
  agreed: z.union([z.object({ gpuHoursPerMonth: z.number() }), z.object({ percent: z.number() })]).nullable(),
  busyGpuHours: z.number(),
  idleHeldGpuHours: z.number(),
  /** busy + idle-held. */
  usedGpuHours: z.number(),
  /** agreed − used (negative when over); null without a share. */
  leftGpuHours: z.number().nullable(),
  /** used / agreed × 100; null without a share (or a share of 0). */
  usedPercent: z.number().nullable(),
  /** The share the elapsed part of the period allows (agreed × elapsed / length). */
  paceGpuHours: z.number().nullable(),
  /** Used more than the whole period's share. */
  overShare: z.boolean(),
  /** Used more than the elapsed part of the period allows (ahead of pace). */
  overPace: z.boolean(),
});
export type ShareStatus = z.infer<typeof ShareStatusSchema>;

/** How one institution's agreement is honoured (its projects together). */
export const InstitutionShareSchema = z.object({
  institution: z.string(),
  projects: z.array(z.string()),
  share: ShareStatusSchema,
  /** Sum of the projects' own shares, for comparison with the institution's (null: none set). */
  projectsAgreedGpuHours: z.number().nullable(),
});
export type InstitutionShare = z.infer<typeof InstitutionShareSchema>;

/** Live usage of one project (or `unassigned`), computed every second from fleet state. */
export const ProjectUsageSchema = z.object({
  project: z.string(),
  /** GPUs with at least one of the project's processes (fractional when GPUs are shared). */
  gpusInUse: z.number(),
  /** Of those, GPUs held but idle (utilization below the threshold for the idle window). */
  gpusIdleHeld: z.number(),
  /** Mean GPU utilization over the project's GPUs with a known utilization; null if none known. */
  meanUtilizationPercent: z.number().nullable(),
  memoryUsedMiB: z.number(),
  powerDrawWatts: z.number(),
  /** Absent for the `display` role (the server removes user and job names). */
  users: z.array(z.string()).optional(),
  jobs: z.array(z.string()).optional(),
  nodes: z.array(z.string()),
  gpuHoursToday: z.number(),
  idleGpuHoursToday: z.number(),
  energyKWhToday: z.number(),
  quotaGpus: z.number().nullable(),
  /** True when the project holds more GPUs than its quota (the server decides; dashboards only show it). */
  overQuota: z.boolean().optional(),
  /** Energy of the idle-held GPU-hours today (part of `energyKWhToday`). */
  idleEnergyKWhToday: z.number().optional(),
  /** CO2e of today's energy (kg): kWh × PUE × grid factor. */
  co2eKgToday: z.number().optional(),
  /** Fair share this month (null: no data yet). */
  share: ShareStatusSchema.nullable().optional(),
});
export type ProjectUsage = z.infer<typeof ProjectUsageSchema>;

export const ClusterTotalsSchema = z.object({
  gpusTotal: z.number().int(),
  gpusInUse: z.number().int(),
  gpusIdleHeld: z.number().int(),
  gpusFree: z.number().int(),
  gpusOffline: z.number().int(),
  /** GPUs whose utilization is unknown (MIG mode, stale collector). */
  gpusUnknown: z.number().int(),
  meanUtilizationPercent: z.number().nullable(),
  powerDrawWatts: z.number(),
  activeProjects: z.number().int(),
  /** GPUs in use counting a MIG instance as its fraction of the GPU (= the projects' `gpusInUse` summed). */
  gpuEquivalentsInUse: z.number().optional(),
});
export type ClusterTotals = z.infer<typeof ClusterTotalsSchema>;

/** `GET /api/v1/projects` and the `projects:usage` event. */
export const ProjectsUsageSchema = z.object({
  serverTime: z.number(),
  projects: z.array(ProjectUsageSchema),
  cluster: ClusterTotalsSchema,
  /** Per institution, this month: how the agreed share is honoured. */
  institutions: z.array(InstitutionShareSchema).optional(),
  /** The carbon factors in effect (projects file `carbon:`). */
  carbon: z.object({ gridGramsPerKWh: z.number(), pue: z.number() }).optional(),
});
export type ProjectsUsage = z.infer<typeof ProjectsUsageSchema>;

/** `GET /api/v1/projects/meta` and part of the dashboard snapshot: who the projects are. */
export const ProjectsMetaSchema = z.object({
  projects: z.array(ProjectInfoSchema),
  institutions: z.array(InstitutionInfoSchema),
  areas: z.array(AreaInfoSchema),
  /** Why the last (re)load of the projects file failed (the last good config stays in effect); null/absent: fine. */
  configError: z.string().nullable().optional(),
});
export type ProjectsMeta = z.infer<typeof ProjectsMetaSchema>;

// ---- alerts ----

export const AlertSeveritySchema = z.enum(['critical', 'warning', 'info']);
export type AlertSeverity = z.infer<typeof AlertSeveritySchema>;

export const AlertSchema = z.object({
  /** Stable for one occurrence: rule + subject + start. */
  id: z.string(),
  /** Rule id, e.g. `gpu_temperature_high`, `node_offline`, `gpu_idle_held`. */
  rule: z.string(),
  severity: AlertSeveritySchema,
  state: z.enum(['firing', 'resolved']),
  node: z.string(),
  gpuUuid: z.string().nullable(),
  gpuIndex: z.number().int().nullable(),
  project: z.string().nullable(),
  /** Plain-language summary (English); dashboards build their own localized text from rule + value. */
  message: z.string(),
  value: z.number().nullable(),
  /** Highest value while the alert was firing (numeric rules); a resolved alert reads it, not `value`. */
  peak: z.number().nullable().optional(),
  threshold: z.number().nullable(),
  startedAt: z.number(),
  endedAt: z.number().nullable(),
  /** Set when an admin acknowledged the alert (`POST /api/v1/alerts/:id/ack`); `by` is null for the display role. */
  acknowledged: z
    .object({
      by: z.string().nullable(),
      at: z.number(),
      /** Webhooks stay quiet for this rule and subject until then; null: no silence. */
      silencedUntil: z.number().nullable(),
    })
    .nullable()
    .optional(),
});
export type Alert = z.infer<typeof AlertSchema>;

/** `GET /api/v1/alerts`, the `alerts:snapshot` event, and `alerts:changed` (only the alerts that changed). */
export const AlertsListSchema = z.object({ serverTime: z.number(), alerts: z.array(AlertSchema) });
export type AlertsList = z.infer<typeof AlertsListSchema>;

// ---- history and usage API (HTTP) ----

export const HistoryTierSchema = z.enum(['raw', '1m', '1h']);
export type HistoryTier = z.infer<typeof HistoryTierSchema>;

export const HistoryScopeSchema = z.enum(['gpu', 'node', 'project', 'cluster']);
export type HistoryScope = z.infer<typeof HistoryScopeSchema>;

/** `GET /api/v1/history?scope=&id=&metrics=a,b&from=&to=&step=` */
export const HistoryResponseSchema = z.object({
  scope: HistoryScopeSchema,
  id: z.string().nullable(),
  tier: HistoryTierSchema,
  from: z.number(),
  to: z.number(),
  stepMs: z.number(),
  series: z.array(
    z.object({
      metric: z.string(),
      /** Sub-key when a scope has several series (e.g. GPU uuid within a node, project id). */
      key: z.string().nullable(),
      /** [time ms, value or null]. */
      points: z.array(z.tuple([z.number(), z.number().nullable()])),
    }),
  ),
});
export type HistoryResponse = z.infer<typeof HistoryResponseSchema>;

export const UsageGroupBySchema = z.enum(['project', 'user', 'institution']);
export type UsageGroupBy = z.infer<typeof UsageGroupBySchema>;
export const UsagePeriodSchema = z.enum(['day', 'week', 'month']);
export type UsagePeriod = z.infer<typeof UsagePeriodSchema>;

/** `GET /api/v1/usage?from=&to=&groupBy=project&period=week` (CSV with `Accept: text/csv` or `format=csv`). */
export const UsageResponseSchema = z.object({
  from: z.number(),
  to: z.number(),
  groupBy: UsageGroupBySchema,
  period: UsagePeriodSchema,
  rows: z.array(
    z.object({
      periodStart: z.number(),
      key: z.string(),
      busyGpuHours: z.number(),
      idleHeldGpuHours: z.number(),
      gpuHours: z.number(),
      energyKWh: z.number(),
      /** Energy of the idle-held GPU-hours (part of `energyKWh`; 0 for rollups written before it was kept). */
      idleHeldEnergyKWh: z.number().optional(),
      /** CO2e (kg) of `energyKWh`: kWh × PUE × grid factor. */
      co2eKg: z.number().optional(),
      /** Fair share of the row's group for its period (groupBy project/institution, period week/month). */
      share: ShareStatusSchema.nullable().optional(),
    }),
  ),
  carbon: z.object({ gridGramsPerKWh: z.number(), pue: z.number() }).optional(),
});
export type UsageResponse = z.infer<typeof UsageResponseSchema>;
