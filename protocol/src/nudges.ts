/**
 * Nudges of idle-held GPUs (server/README.md "Nudges"): what `GET /api/v1/nudges` answers and
 * what dashboards show on the GPU page and in My work.
 */
import { z } from 'zod';

/**
 * - `nudge`: the process owner was told (or would have been: see `email`);
 * - `snooze`: the owner clicked "I'm still using it" (`until`);
 * - `escalation`: the project lead was told;
 * - `ops`: an alert went to ops through the webhooks;
 * - `resolved`: the GPU was no longer held idle after a nudge (`idleMsAfterNudge`).
 */
export const NudgeKindSchema = z.enum(['nudge', 'snooze', 'escalation', 'ops', 'resolved']);
export type NudgeKind = z.infer<typeof NudgeKindSchema>;

/** E-mail outcome; `not-configured`: the server has no SMTP server (`GPUPULSE_SMTP_URL`). */
export const NudgeEmailSchema = z.enum(['sent', 'failed', 'dropped', 'not-configured', 'no-address']);
export type NudgeEmail = z.infer<typeof NudgeEmailSchema>;

export const NudgeRecordSchema = z.object({
  id: z.string(),
  kind: NudgeKindSchema,
  /** ms since the epoch. */
  at: z.number(),
  node: z.string(),
  gpuUuid: z.string(),
  gpuIndex: z.number().int().nullable(),
  /** The process owner whose holding this is about. */
  user: z.string(),
  project: z.string().nullable(),
  /** Since when the GPU is held below the idle threshold. */
  idleSince: z.number(),
  /** Process name (never the command line). */
  process: z.string().nullable(),
  /** GPU-hours held idle so far (the user's share of the GPU × idle time). */
  idleGpuHours: z.number().nullable(),
  /** `snooze`: nudges of this GPU and user are quiet until then. */
  until: z.number().nullable(),
  /** Who was told: the owner (`user`), the project lead (`lead`), ops. Null for snoozes and resolutions. */
  to: z.enum(['user', 'lead', 'ops']).nullable(),
  /** E-mail outcome (null where no e-mail was meant: snooze, ops, resolved). The address itself is never shown. */
  email: NudgeEmailSchema.nullable(),
  /** Webhook messages queued (0: none configured or webhooks off for nudges). */
  webhooks: z.number().int().nullable(),
  /** `resolved`: how long the GPU stayed idle after the owner's nudge (ms). */
  idleMsAfterNudge: z.number().nullable(),
});
export type NudgeRecord = z.infer<typeof NudgeRecordSchema>;

/** A snooze in effect. */
export const NudgeSnoozeSchema = z.object({
  node: z.string(),
  gpuUuid: z.string(),
  user: z.string(),
  until: z.number(),
});
export type NudgeSnooze = z.infer<typeof NudgeSnoozeSchema>;

/** `GET /api/v1/nudges?node=&gpu=&user=&limit=` (newest first). */
export const NudgesListSchema = z.object({
  serverTime: z.number(),
  /** Whether e-mail goes out (`GPUPULSE_SMTP_URL` set). */
  email: z.enum(['configured', 'not-configured']),
  nudges: z.array(NudgeRecordSchema),
  snoozes: z.array(NudgeSnoozeSchema),
});
export type NudgesList = z.infer<typeof NudgesListSchema>;
