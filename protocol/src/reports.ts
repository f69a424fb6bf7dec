import { z } from 'zod';
import { ShareStatusSchema } from './usage.ts';

/** GPU-hours and energy of a project, institution, day or the whole centre over a report period. */
export const ReportTotalsSchema = z.object({
  busyGpuHours: z.number(),
  idleHeldGpuHours: z.number(),
  /** busy + idle-held. */
  gpuHours: z.number(),
  energyKWh: z.number(),
  /** "Energy spent holding idle GPUs" (part of `energyKWh`). */
  idleHeldEnergyKWh: z.number(),
  /** kWh × PUE × grid factor, kg. */
  co2eKg: z.number(),
  idleHeldCo2eKg: z.number(),
  /** busy / (busy + idle-held) × 100; null without use. */
  busyPercent: z.number().nullable(),
});
export type ReportTotals = z.infer<typeof ReportTotalsSchema>;

/** Nudges of the period and their effect (from the nudge log); `available: false`: no nudge data. */
export const ReportNudgesSchema = z.object({
  available: z.boolean(),
  sent: z.number().int().nullable(),
  snoozed: z.number().int().nullable(),
  escalated: z.number().int().nullable(),
  /** Mean idle-held minutes after a nudge became due, before vs after it was sent (null: unknown). */
  idleMinutesBefore: z.number().nullable(),
  idleMinutesAfter: z.number().nullable(),
});
export type ReportNudges = z.infer<typeof ReportNudgesSchema>;

/**
 * `GET /api/v1/reports/:period?institution=` — a month (`2026-11`) or ISO week (`2026-W47`) for
 * one institution or the whole centre, computed from the rollup tiers. Aggregated only: projects
 * and institutions, never user names (role `display`).
 */
export const ReportSchema = z.object({
  period: z.string(),
  kind: z.enum(['month', 'week']),
  from: z.number(),
  to: z.number(),
  /** The period has ended (else the figures run to `generatedAt`). */
  complete: z.boolean(),
  generatedAt: z.number(),
  /** null: the whole centre. */
  institution: z.string().nullable(),
  carbon: z.object({ gridGramsPerKWh: z.number(), pue: z.number() }),
  /** GPUs of the centre used for percentage shares. */
  centreGpus: z.number(),
  totals: ReportTotalsSchema,
  /** The institution's share (centre report: no agreed share, used vs capacity). */
  share: ShareStatusSchema,
  institutions: z.array(
    z.object({
      institution: z.string(),
      totals: ReportTotalsSchema,
      share: ShareStatusSchema,
      projectsAgreedGpuHours: z.number().nullable(),
    }),
  ),
  /** Largest first. */
  projects: z.array(
    z.object({
      project: z.string(),
      institution: z.string().nullable(),
      totals: ReportTotalsSchema,
      share: ShareStatusSchema,
    }),
  ),
  /** Per day of the period. */
  trend: z.array(z.object({ start: z.number(), totals: ReportTotalsSchema })),
  /** The period before, for comparison. */
  previous: z.object({ period: z.string(), totals: ReportTotalsSchema }),
  nudges: ReportNudgesSchema,
});
export type Report = z.infer<typeof ReportSchema>;
