import { z } from 'zod';
import { GpuProcessSchema } from './schemas.ts';

/**
 * Roles of people (issue 8), lowest first. `none`: nothing but the health summary;
 * `display`: the fleet without user names, job names, command lines or environment values;
 * `viewer`: also user names, jobs and processes, command lines/env only of their own processes;
 * `admin`: everything, plus reloads and alert acknowledgement.
 */
export const ROLES = ['none', 'display', 'viewer', 'admin'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

/** How the server knows who is asking. */
export const PrincipalViaSchema = z.enum(['anonymous', 'token', 'session', 'oidc', 'proxy']);
export type PrincipalVia = z.infer<typeof PrincipalViaSchema>;

/** `GET /api/v1/me`: who the server thinks is asking, and with which role. */
export const WhoAmISchema = z.object({
  role: RoleSchema,
  /** Unix user name the role's "own processes" refer to; null: none (anonymous, a token without one). */
  user: z.string().nullable(),
  /** A label: the token's name, the signed-in user's name … */
  name: z.string().nullable(),
  via: PrincipalViaSchema,
  /** True when single sign-on is configured (`/auth/login` works). */
  loginAvailable: z.boolean(),
});
export type WhoAmI = z.infer<typeof WhoAmISchema>;

/** Fields the server removed from a process because of the asker's role (never a silent partial answer). */
export const RedactedFieldSchema = z.enum(['cmdline', 'env']);
export type RedactedField = z.infer<typeof RedactedFieldSchema>;

/** One process of `GET /api/v1/nodes/:name/processes`: the agent's facts plus the server's attribution. */
export const NodeProcessSchema = GpuProcessSchema.extend({
  /** Project the process is attributed to (`unassigned` when no rule matches). */
  project: z.string().nullable().optional(),
  gpuIndex: z.number().int().nullable().optional(),
  /** Fields the server left out for the asker's role (another user's process, for a viewer). */
  redacted: z.array(RedactedFieldSchema).optional(),
});
export type NodeProcess = z.infer<typeof NodeProcessSchema>;

/** `GET /api/v1/nodes/:name/processes`. */
export const NodeProcessesSchema = z.object({
  serverTime: z.number(),
  node: z.string(),
  processes: z.array(NodeProcessSchema),
});
export type NodeProcesses = z.infer<typeof NodeProcessesSchema>;
