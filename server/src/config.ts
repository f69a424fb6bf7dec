import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { cidrProblem } from './access/access-file.ts';
import { parseWebhookList } from './alerts/config.ts';
import { normalizeOrigin, parseAllowedOrigins } from './http/security.ts';
import { smtpUrlProblem } from './mail/smtp-url.ts';
import type { AgentRateLimits } from './socket/agent-auth.ts';

/** The built web app, resolved from this package's location: `<repo>/web/dist`. */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface InfluxConfig {
  /** Base URL of an InfluxDB (v1 HTTP API); null: managed local influxd if installed, else memory. */
  url: string | null;
  database: string;
  token: string | null;
  username: string | null;
  password: string | null;
  /** The influxd executable for the managed local InfluxDB. */
  binary: string;
}

export interface WriteBufferConfig {
  batchSize: number;
  flushIntervalMs: number;
  maxPoints: number;
  /** With the disk spool: a backlog beyond this many points goes to disk (default 25,000). */
  spillPoints?: number;
  /** Retry backoff (defaults 250 ms → 30 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Retry hint of a refused report: the backlog's drain time at the recent write rate, within these (defaults 5 s → 60 s). */
  retryAfterMs?: number;
  maxRetryAfterMs?: number;
}

export interface ServerConfig {
  /** HTTP + Socket.IO port; 0 picks a free one. */
  port: number;
  /** Interface to listen on; null: all (Node's default). */
  host: string | null;
  influx: InfluxConfig;
  /** Tokens agents may present. Empty: every agent is refused. */
  agentTokens: string[];
  /** Projects file (recorded; attribution rules come later). */
  projectsFile: string | null;
  /** Absolute; the managed influxd keeps its files in `<dataDir>/influxdb`. */
  dataDir: string;
  /**
   * Scale-out (`redis://` or `rediss://`): set, several processes form one service over this
   * Redis (server/src/cluster/); unset, one process with no Redis code path taken.
   */
  redisUrl: string | null;
  /** Built web app served at `/`. */
  webDir: string;
  logLevel: LogLevel;
  /** Cadence of `fleet:delta` (a delta, possibly empty, every tick). */
  deltaIntervalMs: number;
  /**
   * Phase of the delta ticker within each wall-clock period: deltas go out at
   * `k × deltaIntervalMs + deltaPhaseMs`. Agents sample on period boundaries, so a delta
   * carries samples that are about `deltaPhaseMs` old (the freshness budget is 250 ms).
   */
  deltaPhaseMs: number;
  /** Cadence of the status sweeper. */
  sweepIntervalMs: number;
  /** Interval assumed for agents that do not announce theirs. */
  defaultAgentIntervalMs: number;
  /** A node is `stale` after this many agent intervals without a sample. */
  staleIntervals: number;
  /** A connected node silent this long is `offline`. */
  offlineAfterMs: number;
  /** Agent clock further than this from the server's: one `CLOCK_SKEW` notice per connection. */
  clockSkewMs: number;
  /**
   * Samples whose `ts` is older than this (server clock) are refused `TOO_OLD`: the agent's spool
   * age bound (24 h default, `GPUPULSE_SAMPLE_MAX_AGE_MS`).
   */
  sampleMaxAgeMs: number;
  /** Samples dated further ahead of the server clock are refused `TOO_NEW` (5 min). */
  sampleMaxAheadMs: number;
  writeBuffer: WriteBufferConfig;
  /** A GPU held by a process below this utilization (%) for `idleWindowMs` is held-but-idle. */
  idleThresholdPercent: number;
  idleWindowMs: number;
  /** Fallback poll of the projects file (it is also watched). */
  projectsPollMs: number;
  /** Unix group database for `groups` rules in the projects file. */
  groupFile: string;
  passwdFile: string;
  /** Cadence of `gpupulse_project_usage` / `gpupulse_cluster_usage` points. */
  projectUsageIntervalMs: number;
  /** A minute's rollup is written this long after the minute ends (late samples still count). */
  rollupGraceMs: number;
  retention: RetentionConfig;
  /** Alerts file (YAML/JSON); null: the built-in rules only. */
  alertsFile: string | null;
  /** Webhook specs from GPUPULSE_WEBHOOKS (comma-separated URLs, optional `slack+`/`json+` prefix). */
  webhooks: string[];
  /** Disk spool of the write buffer, in `<dataDir>/spool` (used with InfluxDB, not the memory store). */
  spool: { enabled: boolean; maxBytes: number };
  /** Access file (roles, tokens, agents, SSO, trusted proxy); null: anonymous `display`, no tokens. */
  accessFile: string | null;
  /** Fallback poll of the access file (it is also watched). */
  accessPollMs: number;
  /** Agent handshake/report rate limits (not from env; defaults in socket/agent-auth.ts). */
  agentLimits?: Partial<AgentRateLimits>;
  /** CIDRs that may scrape `/metrics` without credentials (Prometheus). */
  metricsFrom: string[];
  /** Most dashboards connected at once; more are refused at connect. */
  maxDashboards: number;
  /** Least time between two `fleet:resync` of one dashboard. */
  resyncMinIntervalMs: number;
  /** Origins besides the server's own allowed for browser handshakes and cookie-authenticated requests. */
  allowedOrigins: string[];
  /** HTTPS: certificate and key files (PEM); both or neither. */
  tls: { certFile: string; keyFile: string } | null;
  /** The dashboard's external URL (behind a reverse proxy); https here makes cookies `Secure`. */
  publicUrl: string | null;
  /** E-mail (nudges, reports): `GPUPULSE_SMTP_URL` (null: no e-mail) and `GPUPULSE_SMTP_FROM`. */
  smtp: { url: string | null; from: string | null };
}

export interface RetentionConfig {
  /**
   * `auto`: create/alter retention policies on InfluxDB 1.x at start when permitted; `existing`: use
   * `rp_1m`/`rp_1h` without creating them (2.x DBRP mappings); `off`: everything to the default RP.
   */
  policies: 'auto' | 'existing' | 'off';
  /** InfluxQL durations (`14d`, `180d`, `INF`). */
  raw: string;
  oneMinute: string;
  oneHour: string;
}

export class ConfigError extends Error {
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

const opt = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const httpUrl = (name: string) =>
  opt.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return ['http:', 'https:'].includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `${name} must be an http(s) URL, e.g. http://127.0.0.1:8086` },
  );

/** An InfluxQL retention duration: `INF` or `<n><unit>` (units h, d, w). */
const duration = (name: string) =>
  z
    .string()
    .regex(/^(INF|\d+[hdw])$/i, `${name} must be an InfluxQL duration like 14d, 26w, 720h or INF`)
    .optional();

const EnvSchema = z.object({
  GPUPULSE_PORT: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_PORT must be a number' })
      .int('GPUPULSE_PORT must be an integer')
      .min(0, 'GPUPULSE_PORT must be 0..65535')
      .max(65535, 'GPUPULSE_PORT must be 0..65535')
      .optional(),
  ),
  GPUPULSE_INFLUX_URL: httpUrl('GPUPULSE_INFLUX_URL'),
  GPUPULSE_INFLUX_DB: opt.refine((v) => v === undefined || v.length <= 256, 'GPUPULSE_INFLUX_DB is too long'),
  GPUPULSE_INFLUX_TOKEN: opt,
  GPUPULSE_INFLUX_USER: opt,
  GPUPULSE_INFLUX_PASSWORD: opt,
  GPUPULSE_INFLUX_BINARY: opt,
  GPUPULSE_AGENT_TOKENS: opt,
  GPUPULSE_PROJECTS: opt,
  GPUPULSE_DATA_DIR: opt,
  GPUPULSE_REDIS_URL: opt.refine(
    (v) => v === undefined || /^rediss?:\/\/[^\s]+$/.test(v),
    'GPUPULSE_REDIS_URL must be a redis:// or rediss:// URL, e.g. redis://redis.example:6379/0',
  ),
  GPUPULSE_WEB_DIR: opt,
  GPUPULSE_ALERTS: opt,
  GPUPULSE_WEBHOOKS: opt,
  GPUPULSE_SMTP_URL: opt,
  GPUPULSE_SMTP_FROM: opt,
  GPUPULSE_SAMPLE_MAX_AGE_MS: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_SAMPLE_MAX_AGE_MS must be a number of ms' })
      .int('GPUPULSE_SAMPLE_MAX_AGE_MS must be an integer')
      .min(60_000, 'GPUPULSE_SAMPLE_MAX_AGE_MS must be at least 60000 (1 min)')
      .optional(),
  ),
  GPUPULSE_SPOOL_MAX_BYTES: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_SPOOL_MAX_BYTES must be a number of bytes' })
      .int('GPUPULSE_SPOOL_MAX_BYTES must be an integer')
      .min(0, 'GPUPULSE_SPOOL_MAX_BYTES must be >= 0 (0 turns the spool off)')
      .optional(),
  ),
  GPUPULSE_IDLE_THRESHOLD_PERCENT: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_IDLE_THRESHOLD_PERCENT must be a number' })
      .min(0, 'GPUPULSE_IDLE_THRESHOLD_PERCENT must be 0..100')
      .max(100, 'GPUPULSE_IDLE_THRESHOLD_PERCENT must be 0..100')
      .optional(),
  ),
  GPUPULSE_IDLE_WINDOW_MS: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_IDLE_WINDOW_MS must be a number' })
      .int('GPUPULSE_IDLE_WINDOW_MS must be an integer')
      .min(0, 'GPUPULSE_IDLE_WINDOW_MS must be >= 0')
      .optional(),
  ),
  GPUPULSE_ROLLUP_GRACE_MS: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_ROLLUP_GRACE_MS must be a number' })
      .int('GPUPULSE_ROLLUP_GRACE_MS must be an integer')
      .min(0, 'GPUPULSE_ROLLUP_GRACE_MS must be 0..600000')
      .max(600_000, 'GPUPULSE_ROLLUP_GRACE_MS must be 0..600000')
      .optional(),
  ),
  GPUPULSE_RETENTION_POLICIES: opt.pipe(
    z
      .enum(['auto', 'existing', 'off'], {
        message: 'GPUPULSE_RETENTION_POLICIES must be auto, existing or off',
      })
      .optional(),
  ),
  GPUPULSE_RETENTION_RAW: opt.pipe(duration('GPUPULSE_RETENTION_RAW')),
  GPUPULSE_RETENTION_1M: opt.pipe(duration('GPUPULSE_RETENTION_1M')),
  GPUPULSE_RETENTION_1H: opt.pipe(duration('GPUPULSE_RETENTION_1H')),
  GPUPULSE_GROUP_FILE: opt,
  GPUPULSE_ACCESS_FILE: opt,
  GPUPULSE_METRICS_FROM: opt,
  GPUPULSE_ALLOWED_ORIGINS: opt,
  GPUPULSE_HOST: opt,
  GPUPULSE_TLS_CERT: opt,
  GPUPULSE_TLS_KEY: opt,
  GPUPULSE_PUBLIC_URL: opt,
  GPUPULSE_MAX_DASHBOARDS: opt.pipe(
    z.coerce
      .number<string | undefined>({ message: 'GPUPULSE_MAX_DASHBOARDS must be a number' })
      .int('GPUPULSE_MAX_DASHBOARDS must be an integer')
      .min(1, 'GPUPULSE_MAX_DASHBOARDS must be >= 1')
      .optional(),
  ),
  GPUPULSE_LOG_LEVEL: opt.pipe(
    z.enum(LOG_LEVELS, { message: `GPUPULSE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` }).optional(),
  ),
});

/**
 * Reads the server configuration from environment variables (pass `process.env`). Relative paths
 * are resolved against `cwd`. Throws `ConfigError` listing every problem.
 */
export function loadConfig(env: Record<string, string | undefined>, cwd = process.cwd()): ServerConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const key = String(i.path[0] ?? '');
        return i.message.startsWith(key) ? i.message : `${key}: ${i.message}`;
      }),
    );
  }
  const e = parsed.data;
  const issues: string[] = [];
  if (e.GPUPULSE_INFLUX_URL) {
    // Secrets in the URL would be shown wherever the URL is (health, dashboards, logs): refused.
    const u = new URL(e.GPUPULSE_INFLUX_URL);
    if (u.username || u.password) {
      issues.push(
        'GPUPULSE_INFLUX_URL must not contain credentials (user:password@); use GPUPULSE_INFLUX_USER/GPUPULSE_INFLUX_PASSWORD or GPUPULSE_INFLUX_TOKEN',
      );
    }
    if (u.search || u.hash) {
      issues.push(
        'GPUPULSE_INFLUX_URL must not contain a query string or fragment; use GPUPULSE_INFLUX_USER/GPUPULSE_INFLUX_PASSWORD or GPUPULSE_INFLUX_TOKEN for credentials',
      );
    }
  }
  if (e.GPUPULSE_INFLUX_USER && !e.GPUPULSE_INFLUX_PASSWORD) {
    issues.push('GPUPULSE_INFLUX_USER is set but GPUPULSE_INFLUX_PASSWORD is not');
  }
  if (e.GPUPULSE_INFLUX_TOKEN && e.GPUPULSE_INFLUX_USER) {
    issues.push(
      'set either GPUPULSE_INFLUX_TOKEN or GPUPULSE_INFLUX_USER/GPUPULSE_INFLUX_PASSWORD, not both',
    );
  }
  const agentTokens = (e.GPUPULSE_AGENT_TOKENS ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (agentTokens.some((t) => t.length > 512))
    issues.push('GPUPULSE_AGENT_TOKENS: a token is longer than 512');
  const list = (v: string | undefined) =>
    (v ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const metricsFrom = list(e.GPUPULSE_METRICS_FROM);
  for (const c of metricsFrom) {
    const problem = cidrProblem(c);
    if (problem) issues.push(`GPUPULSE_METRICS_FROM: ${c}: ${problem}`);
  }
  let allowedOrigins: string[] = [];
  try {
    allowedOrigins = parseAllowedOrigins(e.GPUPULSE_ALLOWED_ORIGINS);
  } catch (err) {
    issues.push((err as Error).message);
  }
  if (e.GPUPULSE_PUBLIC_URL && !normalizeOrigin(e.GPUPULSE_PUBLIC_URL)) {
    issues.push('GPUPULSE_PUBLIC_URL must be an http(s) URL like https://gpupulse.example.org');
  }
  if (!!e.GPUPULSE_TLS_CERT !== !!e.GPUPULSE_TLS_KEY) {
    issues.push('set both GPUPULSE_TLS_CERT and GPUPULSE_TLS_KEY for HTTPS, or neither');
  }
  try {
    parseWebhookList(e.GPUPULSE_WEBHOOKS);
  } catch (err) {
    issues.push(`GPUPULSE_WEBHOOKS: ${(err as Error).message}`);
  }
  if (e.GPUPULSE_SMTP_URL) {
    // The URL may hold a password: the message never repeats it.
    const problem = smtpUrlProblem(e.GPUPULSE_SMTP_URL);
    if (problem) issues.push(`GPUPULSE_SMTP_URL ${problem}`);
  }
  if (issues.length) throw new ConfigError(issues);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  return {
    port: e.GPUPULSE_PORT ?? 8080,
    host: e.GPUPULSE_HOST ?? null,
    influx: {
      url: e.GPUPULSE_INFLUX_URL ?? null,
      database: e.GPUPULSE_INFLUX_DB ?? 'gpupulse',
      token: e.GPUPULSE_INFLUX_TOKEN ?? null,
      username: e.GPUPULSE_INFLUX_USER ?? null,
      password: e.GPUPULSE_INFLUX_PASSWORD ?? null,
      binary: e.GPUPULSE_INFLUX_BINARY ?? 'influxd',
    },
    agentTokens,
    projectsFile: e.GPUPULSE_PROJECTS ? abs(e.GPUPULSE_PROJECTS) : null,
    dataDir: abs(e.GPUPULSE_DATA_DIR ?? './.data'),
    redisUrl: e.GPUPULSE_REDIS_URL || null,
    webDir: e.GPUPULSE_WEB_DIR ? abs(e.GPUPULSE_WEB_DIR) : DEFAULT_WEB_DIR,
    logLevel: e.GPUPULSE_LOG_LEVEL ?? 'info',
    deltaIntervalMs: 1000,
    deltaPhaseMs: 150,
    sweepIntervalMs: 1000,
    defaultAgentIntervalMs: 1000,
    staleIntervals: 3,
    offlineAfterMs: 30_000,
    clockSkewMs: 2000,
    sampleMaxAgeMs: e.GPUPULSE_SAMPLE_MAX_AGE_MS ?? 24 * 3600_000,
    sampleMaxAheadMs: 5 * 60_000,
    // ~0.5–1 KiB per point in memory: 100,000 points stay well within the 300 MiB budget.
    writeBuffer: { batchSize: 5000, flushIntervalMs: 1000, maxPoints: 100_000, spillPoints: 25_000 },
    idleThresholdPercent: e.GPUPULSE_IDLE_THRESHOLD_PERCENT ?? 5,
    idleWindowMs: e.GPUPULSE_IDLE_WINDOW_MS ?? 10 * 60_000,
    projectsPollMs: 10_000,
    groupFile: e.GPUPULSE_GROUP_FILE ? abs(e.GPUPULSE_GROUP_FILE) : '/etc/group',
    passwdFile: '/etc/passwd',
    projectUsageIntervalMs: 10_000,
    rollupGraceMs: e.GPUPULSE_ROLLUP_GRACE_MS ?? 30_000,
    retention: {
      policies: e.GPUPULSE_RETENTION_POLICIES ?? 'auto',
      raw: e.GPUPULSE_RETENTION_RAW ?? '14d',
      oneMinute: e.GPUPULSE_RETENTION_1M ?? '180d',
      oneHour: e.GPUPULSE_RETENTION_1H ?? 'INF',
    },
    alertsFile: e.GPUPULSE_ALERTS ? abs(e.GPUPULSE_ALERTS) : null,
    webhooks: (e.GPUPULSE_WEBHOOKS ?? '')
      .split(',')
      .map((w) => w.trim())
      .filter(Boolean),
    spool: {
      enabled: e.GPUPULSE_SPOOL_MAX_BYTES !== 0,
      maxBytes: e.GPUPULSE_SPOOL_MAX_BYTES || 1024 ** 3,
    },
    accessFile: e.GPUPULSE_ACCESS_FILE ? abs(e.GPUPULSE_ACCESS_FILE) : null,
    accessPollMs: 10_000,
    metricsFrom,
    maxDashboards: e.GPUPULSE_MAX_DASHBOARDS ?? 500,
    resyncMinIntervalMs: 5000,
    allowedOrigins,
    tls:
      e.GPUPULSE_TLS_CERT && e.GPUPULSE_TLS_KEY
        ? { certFile: abs(e.GPUPULSE_TLS_CERT), keyFile: abs(e.GPUPULSE_TLS_KEY) }
        : null,
    publicUrl: e.GPUPULSE_PUBLIC_URL ? e.GPUPULSE_PUBLIC_URL.replace(/\/+$/, '') : null,
    smtp: { url: e.GPUPULSE_SMTP_URL ?? null, from: e.GPUPULSE_SMTP_FROM ?? null },
  };
}
