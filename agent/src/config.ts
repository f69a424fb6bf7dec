// Agent configuration: flags win over env; validated with zod into one typed object.
import os from 'node:os';
import { NodeNameSchema } from '@gpupulse/protocol';
import { z } from 'zod';

export const DEFAULT_INTERVAL_MS = 1000;

const intFromString = (min: number, max: number) =>
  z
    .union([z.number(), z.string().trim().regex(/^\d+$/, 'must be a whole number of milliseconds')])
    .transform((v) => Number(v))
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

export const AgentConfigSchema = z
  .object({
    server: z
      .string()
      .trim()
      .url('server must be a URL such as http://gpupulse:8080')
      .refine(
        (u) => /^(https?|wss?):\/\//i.test(u),
        'server must start with http://, https://, ws:// or wss://',
      )
      .optional(),
    token: z.string().min(1, 'token must not be empty').max(512).optional(),
    node: NodeNameSchema,
    intervalMs: intFromString(100, 3_600_000),
    nvidiaSmi: z.string().trim().min(1, 'nvidia-smi path must not be empty'),
    spoolDir: z.string().trim().min(1, 'spool dir must not be empty').optional(),
    once: z.boolean(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  })
  .superRefine((c, ctx) => {
    if (!c.once && !c.server) {
      ctx.addIssue({ code: 'custom', path: ['server'], message: 'is required unless --once' });
    }
    if (c.server && !c.token) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: 'is required with a server' });
    }
  });
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** Raw values as commander gives them (all optional strings / booleans). */
export interface AgentFlags {
  server?: string;
  token?: string;
  node?: string;
  interval?: string;
  nvidiaSmi?: string;
  spoolDir?: string;
  once?: boolean;
  logLevel?: string;
}

export class ConfigError extends Error {}

const SOURCES: Record<string, string> = {
  server: '--server (GPUPULSE_SERVER)',
  token: '--token (GPUPULSE_TOKEN)',
  node: '--node (GPUPULSE_NODE)',
  intervalMs: '--interval (GPUPULSE_INTERVAL_MS)',
  nvidiaSmi: '--nvidia-smi (GPUPULSE_NVIDIA_SMI)',
  spoolDir: '--spool-dir (GPUPULSE_SPOOL_DIR)',
  logLevel: '--log-level (GPUPULSE_LOG_LEVEL)',
};

/** Merges flags over env over defaults and validates. Throws ConfigError with a readable message. */
export function resolveConfig(flags: AgentFlags, env: Record<string, string | undefined>): AgentConfig {
  const pick = (flag: string | undefined, key: string) => {
    if (flag !== undefined) return flag;
    const v = env[key];
    return v === undefined || v === '' ? undefined : v;
  };
  const raw = {
    server: pick(flags.server, 'GPUPULSE_SERVER'),
    token: pick(flags.token, 'GPUPULSE_TOKEN'),
    node: pick(flags.node, 'GPUPULSE_NODE') ?? os.hostname(),
    intervalMs: pick(flags.interval, 'GPUPULSE_INTERVAL_MS') ?? DEFAULT_INTERVAL_MS,
    nvidiaSmi: pick(flags.nvidiaSmi, 'GPUPULSE_NVIDIA_SMI') ?? 'nvidia-smi',
    spoolDir: pick(flags.spoolDir, 'GPUPULSE_SPOOL_DIR'),
    once: flags.once ?? false,
    logLevel: pick(flags.logLevel, 'GPUPULSE_LOG_LEVEL') ?? 'info',
  };
  const parsed = AgentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const where = SOURCES[key] ?? key;
      return `${where}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration: ${issues.join('; ')}`);
  }
  return parsed.data;
}
