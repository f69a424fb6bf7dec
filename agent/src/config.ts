// Agent configuration. Precedence: flags > environment > config file > defaults; validated with
// zod into one typed object. Errors name the flag, the env variable and the file key.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { NodeNameSchema } from '@gpupulse/protocol';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { splitServerList } from './failover.ts';

export const DEFAULT_INTERVAL_MS = 1000;
export const DEFAULT_PROJECT_ENV = ['GPUPULSE_PROJECT', 'PROJECT'] as const;
export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_SPOOL_MAX_AGE_MS = 24 * 3600_000;
export const DEFAULT_KMSG = '/dev/kmsg';

const intFromString = (min: number, max: number) =>
  z
    .union([z.number(), z.string().trim().regex(/^\d+$/, 'must be a whole number of milliseconds')])
    .transform((v) => Number(v))
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** `268435456`, `256MiB`, `256MB`, `1GiB` → bytes; null when unreadable. */
export function parseSize(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.floor(v) : null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) return null;
  return Math.floor(Number(m[1]) * unit);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** `24h`, `90m`, `3600s`, `500ms`, or a plain number of seconds → ms; null when unreadable. */
export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : null;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(v.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * (DURATION_UNITS[(m[2] ?? 's').toLowerCase()] ?? 1000));
}

const sizeSchema = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const n = parseSize(v);
    if (n === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a size such as 268435456, 256MiB or 1GB' });
      return z.NEVER;
    }
    return n;
  })
  .pipe(
    z
      .number()
      .int()
      .min(64 * 1024, 'must be at least 64 KiB'),
  );

const durationSchema = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const n = parseDuration(v);
    if (n === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 24h, 90m or 3600 (seconds)' });
      return z.NEVER;
    }
    return n;
  })
  .pipe(z.number().min(1000, 'must be at least 1 s'));

const envNameList = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be environment variable names')).max(32));

const serverUrl = z
  .string()
  .url('server must be a URL such as http://gpupulse:8080')
  .refine((u) => /^(https?|wss?):\/\//i.test(u), 'server must start with http://, https://, ws:// or wss://');

/** One URL or several (comma-separated or a YAML list), tried in this order. */
const serverList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => splitServerList(v))
  .pipe(
    z
      .array(serverUrl)
      .min(1, 'server must name at least one URL')
      .max(16, 'at most 16 servers')
      .refine((l) => new Set(l).size === l.length, 'a server is listed twice'),
  );

export const AgentConfigSchema = z
  .object({
    /** Servers in failover order (`--server URL[,URL…]`). */
    server: serverList.optional(),
    /** PEM file of a private CA to trust for https/wss servers. */
    ca: z.string().trim().min(1, 'ca must be a file path').optional(),
    token: z.string().min(1, 'token must not be empty').max(512).optional(),
    node: NodeNameSchema,
    intervalMs: intFromString(100, 3_600_000),
    nvidiaSmi: z.string().trim().min(1, 'nvidia-smi path must not be empty'),
    spoolDir: z.string().trim().min(1, 'spool dir must not be empty').optional(),
    spoolMaxBytes: sizeSchema,
    spoolMaxAgeMs: durationSchema,
    projectEnv: envNameList,
    /** Kernel log to follow for XID errors; `off` disables. */
    kmsg: z.string().trim().min(1),
    once: z.boolean(),
    check: z.boolean(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** The config file that was read, if any. */
    configFile: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    if (!c.once && !c.check && !c.server) {
      ctx.addIssue({ code: 'custom', path: ['server'], message: 'is required unless --once or --check' });
    }
    if (c.server && !c.token) {
      ctx.addIssue({ code: 'custom', path: ['token'], message: 'is required with a server' });
    }
  })
  // `server`: the first (primary) server; `servers`: all of them, in failover order.
  .transform(({ server, ...rest }) => ({ ...rest, server: server?.[0], servers: server ?? [] }));
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** Raw values as commander gives them (all optional strings / booleans). */
export interface AgentFlags {
  server?: string;
  ca?: string;
  token?: string;
  node?: string;
  interval?: string;
  nvidiaSmi?: string;
  spoolDir?: string;
  spoolMaxBytes?: string;
  spoolMaxAge?: string;
  projectEnv?: string;
  kmsg?: string;
  config?: string;
  once?: boolean;
  check?: boolean;
  logLevel?: string;
}

export class ConfigError extends Error {}

/** One setting: its config key, flag, env variable and config-file key. */
interface Setting {
  key: keyof AgentConfig & keyof z.input<typeof AgentConfigSchema>;
  flag: keyof AgentFlags;
  flagName: string;
  env: string;
  file: string;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'server', flag: 'server', flagName: '--server', env: 'GPUPULSE_SERVER', file: 'server' },
  { key: 'ca', flag: 'ca', flagName: '--ca', env: 'GPUPULSE_CA', file: 'ca' },
  { key: 'token', flag: 'token', flagName: '--token', env: 'GPUPULSE_TOKEN', file: 'token' },
  { key: 'node', flag: 'node', flagName: '--node', env: 'GPUPULSE_NODE', file: 'node' },
  {
    key: 'intervalMs',
    flag: 'interval',
    flagName: '--interval',
    env: 'GPUPULSE_INTERVAL_MS',
    file: 'intervalMs',
  },
  {
    key: 'nvidiaSmi',
    flag: 'nvidiaSmi',
    flagName: '--nvidia-smi',
    env: 'GPUPULSE_NVIDIA_SMI',
    file: 'nvidiaSmi',
  },
  { key: 'spoolDir', flag: 'spoolDir', flagName: '--spool-dir', env: 'GPUPULSE_SPOOL_DIR', file: 'spoolDir' },
  {
    key: 'spoolMaxBytes',
    flag: 'spoolMaxBytes',
    flagName: '--spool-max-bytes',
    env: 'GPUPULSE_SPOOL_MAX_BYTES',
    file: 'spoolMaxBytes',
  },
  {
    key: 'spoolMaxAgeMs',
    flag: 'spoolMaxAge',
    flagName: '--spool-max-age',
    env: 'GPUPULSE_SPOOL_MAX_AGE',
    file: 'spoolMaxAge',
  },
  {
    key: 'projectEnv',
    flag: 'projectEnv',
    flagName: '--project-env',
    env: 'GPUPULSE_PROJECT_ENV',
    file: 'projectEnv',
  },
  { key: 'kmsg', flag: 'kmsg', flagName: '--kmsg', env: 'GPUPULSE_KMSG', file: 'kmsg' },
  { key: 'logLevel', flag: 'logLevel', flagName: '--log-level', env: 'GPUPULSE_LOG_LEVEL', file: 'logLevel' },
];

const DEFAULTS: Partial<Record<keyof AgentConfig, unknown>> = {
  intervalMs: DEFAULT_INTERVAL_MS,
  nvidiaSmi: 'nvidia-smi',
  spoolMaxBytes: DEFAULT_SPOOL_MAX_BYTES,
  spoolMaxAgeMs: '24h',
  projectEnv: [...DEFAULT_PROJECT_ENV],
  kmsg: DEFAULT_KMSG,
  logLevel: 'info',
};

/** Reads a YAML or JSON config file (JSON is YAML) into a plain object with known keys only. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--config (GPUPULSE_CONFIG): cannot read ${path} (${(err as Error).message})`);
  }
  let data: unknown;
  try {
    data = text.trim() === '' ? {} : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `--config (GPUPULSE_CONFIG): ${path} is not valid YAML/JSON (${(err as Error).message})`,
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data))
    throw new ConfigError(`--config (GPUPULSE_CONFIG): ${path} must hold a mapping of settings`);
  const known = new Set(SETTINGS.map((s) => s.file));
  const unknown = Object.keys(data).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new ConfigError(
      `--config (GPUPULSE_CONFIG): unknown key(s) ${unknown.join(', ')} in ${path}; known: ${[...known].join(', ')}`,
    );
  return data as Record<string, unknown>;
}

/**
 * Merges flags over env over the config file (`--config` / `GPUPULSE_CONFIG`) over defaults and
 * validates. Throws ConfigError with a readable message.
 */
export function resolveConfig(flags: AgentFlags, env: Record<string, string | undefined>): AgentConfig {
  const envOf = (k: string) => {
    const v = env[k];
    return v === undefined || v === '' ? undefined : v;
  };
  const configFile = flags.config ?? envOf('GPUPULSE_CONFIG');
  const file = configFile ? readConfigFile(configFile) : {};
  const raw: Record<string, unknown> = {
    once: flags.once ?? false,
    check: flags.check ?? false,
    configFile,
  };
  for (const s of SETTINGS) {
    const fromFlag = flags[s.flag];
    const fileValue = file[s.file];
    raw[s.key] =
      fromFlag ??
      envOf(s.env) ??
      (fileValue === null || fileValue === undefined ? undefined : fileValue) ??
      (s.key === 'node' ? os.hostname() : DEFAULTS[s.key]);
  }
  const parsed = AgentConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const s = SETTINGS.find((x) => x.key === key);
      const where = s ? `${s.flagName} (${s.env})` : key;
      return `${where}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration: ${issues.join('; ')}`);
  }
  return parsed.data;
}
