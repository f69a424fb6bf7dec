import { readFileSync } from 'node:fs';
import { type AlertSeverity, AlertSeveritySchema } from '@gpupulse/protocol';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

/** What a rule looks at. Each built-in rule id has one; extra rules name theirs. */
export const ALERT_KINDS = [
  'gpu_temperature',
  'memory_temperature',
  'clock_throttle',
  'ecc_uncorrectable',
  'remapped_rows',
  'xid',
  'gpu_stale',
  'node_offline',
  'gpu_idle_held',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** A rule after defaults are applied. Durations in ms. */
export interface AlertRule {
  id: string;
  kind: AlertKind;
  enabled: boolean;
  severity: AlertSeverity;
  /** °C for temperatures; seconds for `gpu_idle_held`; unused otherwise. */
  threshold: number | null;
  /** Resolve only when the value is below `threshold - hysteresis` (numeric rules). */
  hysteresis: number;
  /** The condition must hold this long before the alert fires. */
  forMs: number;
  /** The condition must be gone this long before the alert resolves. */
  clearForMs: number;
  /** Event-like conditions (XID, ECC aggregate increase) stay active this long after the last event. */
  holdMs: number;
  /** `clock_throttle`: the reasons that count (decoded names, as the agent sends them). */
  reasons: string[];
  /** `xid`: only these XID codes (empty: all). */
  codes: number[];
}

export type WebhookFormat = 'json' | 'slack';

export interface WebhookTarget {
  url: string;
  format: WebhookFormat;
  /** Messages per minute (token bucket, burst = this); the excess is coalesced into one summary. */
  ratePerMinute: number;
  /** Only alerts of this severity or worse. */
  minSeverity: AlertSeverity;
  timeoutMs: number;
  /** Retries after the first attempt (network errors, 5xx, 429). */
  maxRetries: number;
}

export interface AlertsConfig {
  rules: AlertRule[];
  webhooks: WebhookTarget[];
  /** Resolved alerts kept in memory for `GET /api/v1/alerts` and dashboards. */
  maxResolved: number;
}

const base = (kind: AlertKind, over: Partial<AlertRule> & { id: string }): AlertRule => ({
  kind,
  enabled: true,
  severity: 'warning',
  threshold: null,
  hysteresis: 0,
  forMs: 0,
  clearForMs: 0,
  holdMs: 0,
  reasons: [],
  codes: [],
  ...over,
});

export const THROTTLE_REASONS = ['hw_thermal_slowdown', 'sw_thermal_slowdown', 'hw_power_brake_slowdown'];

/** The built-in rules (ids are stable; the alerts file overrides them by id). */
export const DEFAULT_ALERT_RULES: readonly AlertRule[] = [
  base('gpu_temperature', {
    id: 'gpu_temperature_high',
    severity: 'critical',
    threshold: 85,
    hysteresis: 3,
    forMs: 60_000,
    clearForMs: 30_000,
  }),
  base('memory_temperature', {
    id: 'memory_temperature_high',
    severity: 'critical',
    threshold: 95,
    hysteresis: 3,
    clearForMs: 30_000,
  }),
  base('clock_throttle', {
    id: 'gpu_throttled',
    severity: 'warning',
    forMs: 30_000,
    clearForMs: 30_000,
    reasons: THROTTLE_REASONS,
  }),
  base('ecc_uncorrectable', { id: 'ecc_uncorrectable', severity: 'critical', holdMs: 3_600_000 }),
  base('remapped_rows', { id: 'remapped_rows', severity: 'critical' }),
  base('xid', { id: 'xid_error', severity: 'critical', holdMs: 600_000 }),
  base('gpu_stale', { id: 'gpu_stale', severity: 'warning', forMs: 10_000 }),
  base('node_offline', { id: 'node_offline', severity: 'critical' }),
  base('gpu_idle_held', { id: 'gpu_idle_held', severity: 'info', threshold: 3600 }),
];

export const DEFAULT_WEBHOOK: Omit<WebhookTarget, 'url' | 'format'> = {
  ratePerMinute: 10,
  minSeverity: 'info',
  timeoutMs: 5000,
  maxRetries: 3,
};

// ---- file schema ----

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** A duration: seconds as a number, or a string `500ms`, `30s`, `5m`, `1h`. → ms */
const DURATION_HINT = 'a duration like 30s, 5m, 1h or 500ms (or a number of seconds)';
const DurationSchema = z.union(
  [
    z
      .number()
      .min(0)
      .transform((s) => s * 1000),
    z
      .string()
      .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, DURATION_HINT)
      .transform((v) => {
        const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v)!;
        return Number(m[1]) * UNITS[m[2]!]!;
      }),
  ],
  { error: () => DURATION_HINT },
);

const RuleFileSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'lower-case letters, digits and _ (e.g. gpu_hot)'),
    kind: z.enum(ALERT_KINDS).optional(),
    enabled: z.boolean().optional(),
    severity: AlertSeveritySchema.optional(),
    threshold: z.number().finite().optional(),
    hysteresis: z.number().min(0).optional(),
    for: DurationSchema.optional(),
    clearFor: DurationSchema.optional(),
    hold: DurationSchema.optional(),
    reasons: z.array(z.string().min(1).max(64)).max(32).optional(),
    codes: z.array(z.number().int().min(0)).max(256).optional(),
  })
  .strict();

const WebhookFileSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, message: 'an http(s) URL' }),
    format: z.enum(['json', 'slack']).optional(),
    ratePerMinute: z.number().int().min(1).max(6000).optional(),
    minSeverity: AlertSeveritySchema.optional(),
    timeout: DurationSchema.optional(),
    maxRetries: z.number().int().min(0).max(10).optional(),
  })
  .strict();

export const AlertsFileSchema = z
  .object({
    rules: z.array(RuleFileSchema).max(200).optional(),
    webhooks: z
      .array(z.union([z.string(), WebhookFileSchema]))
      .max(50)
      .optional(),
    maxResolved: z.number().int().min(0).max(100_000).optional(),
  })
  .strict();
export type AlertsFile = z.input<typeof AlertsFileSchema>;

export class AlertsConfigError extends Error {
  readonly issues: string[];
  constructor(source: string, issues: string[]) {
    super(`invalid alerts config ${source}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'AlertsConfigError';
    this.issues = issues;
  }
}

/**
 * One webhook from `GPUPULSE_WEBHOOKS` / a plain string in the file: a URL, optionally prefixed
 * `slack+` or `json+` (`slack+https://hooks.example/…`). Without a prefix, `hooks.slack.com`
 * URLs get the Slack body, others the generic JSON body.
 */
export function parseWebhookSpec(spec: string): WebhookTarget {
  const m = /^(slack|json)\+(.*)$/.exec(spec.trim());
  const url = (m ? m[2]! : spec).trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`webhook ${JSON.stringify(url)} is not a URL`);
  }
  if (!['http:', 'https:'].includes(parsed.protocol))
    throw new Error(`webhook ${JSON.stringify(url)} must be http(s)`);
  const format: WebhookFormat = m
    ? (m[1] as WebhookFormat)
    : parsed.hostname === 'hooks.slack.com'
      ? 'slack'
      : 'json';
  return { url, format, ...DEFAULT_WEBHOOK };
}

/** `GPUPULSE_WEBHOOKS`: comma-separated specs (see `parseWebhookSpec`). */
export function parseWebhookList(list: string | null | undefined): WebhookTarget[] {
  return (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(parseWebhookSpec);
}

/** Merges a parsed alerts file over the defaults. Throws `AlertsConfigError`. */
export function buildAlertsConfig(
  file: unknown,
  opts: { source?: string; webhooks?: readonly WebhookTarget[] } = {},
): AlertsConfig {
  const source = opts.source ?? '(inline)';
  const parsed = AlertsFileSchema.safeParse(file ?? {});
  if (!parsed.success) {
    throw new AlertsConfigError(
      source,
      parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`),
    );
  }
  const f = parsed.data;
  const issues: string[] = [];
  const rules = DEFAULT_ALERT_RULES.map((r) => ({ ...r, reasons: [...r.reasons], codes: [...r.codes] }));
  const seen = new Set<string>();
  (f.rules ?? []).forEach((r, i) => {
    if (seen.has(r.id)) issues.push(`rules[${i}].id: duplicate rule id ${r.id}`);
    seen.add(r.id);
    const existing = rules.find((x) => x.id === r.id);
    if (existing && r.kind && r.kind !== existing.kind) {
      issues.push(
        `rules[${i}].kind: ${r.id} is a built-in ${existing.kind} rule; use a new id for a ${r.kind} rule`,
      );
      return;
    }
    if (!existing && !r.kind) {
      issues.push(`rules[${i}].kind: required for a new rule (one of ${ALERT_KINDS.join(', ')})`);
      return;
    }
    const target = existing ?? base(r.kind!, { id: r.id });
    if (r.enabled !== undefined) target.enabled = r.enabled;
    if (r.severity) target.severity = r.severity;
    if (r.threshold !== undefined) target.threshold = r.threshold;
    if (r.hysteresis !== undefined) target.hysteresis = r.hysteresis;
    if (r.for !== undefined) target.forMs = r.for;
    if (r.clearFor !== undefined) target.clearForMs = r.clearFor;
    if (r.hold !== undefined) target.holdMs = r.hold;
    if (r.reasons) target.reasons = r.reasons;
    if (r.codes) target.codes = r.codes;
    if (!existing) {
      if (
        ['gpu_temperature', 'memory_temperature', 'gpu_idle_held'].includes(target.kind) &&
        target.threshold === null
      )
        issues.push(`rules[${i}].threshold: required for a ${target.kind} rule`);
      if (target.kind === 'clock_throttle' && target.reasons.length === 0)
        target.reasons = [...THROTTLE_REASONS];
      if ((target.kind === 'xid' || target.kind === 'ecc_uncorrectable') && target.holdMs === 0)
        target.holdMs = target.kind === 'xid' ? 600_000 : 3_600_000;
      rules.push(target);
    }
  });
  const webhooks: WebhookTarget[] = [...(opts.webhooks ?? [])];
  (f.webhooks ?? []).forEach((w, i) => {
    try {
      if (typeof w === 'string') {
        webhooks.push(parseWebhookSpec(w));
        return;
      }
      const t = parseWebhookSpec(w.format ? `${w.format}+${w.url}` : w.url);
      if (w.ratePerMinute !== undefined) t.ratePerMinute = w.ratePerMinute;
      if (w.minSeverity) t.minSeverity = w.minSeverity;
      if (w.timeout !== undefined) t.timeoutMs = Math.max(100, w.timeout);
      if (w.maxRetries !== undefined) t.maxRetries = w.maxRetries;
      webhooks.push(t);
    } catch (err) {
      issues.push(`webhooks[${i}]: ${(err as Error).message}`);
    }
  });
  if (issues.length) throw new AlertsConfigError(source, issues);
  return { rules, webhooks, maxResolved: f.maxResolved ?? 500 };
}

/**
 * Reads an alerts file (YAML, or JSON — JSON is YAML). Errors name the key and, where known, the
 * line: `rules[1].threshold (line 7): expected number`. Throws `AlertsConfigError`.
 */
export function loadAlertsFile(
  path: string,
  opts: { webhooks?: readonly WebhookTarget[] } = {},
): AlertsConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AlertsConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new AlertsConfigError(
      path,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
        return `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]}`;
      }),
    );
  }
  try {
    return buildAlertsConfig(doc.toJS() ?? {}, { source: path, webhooks: opts.webhooks });
  } catch (err) {
    if (!(err instanceof AlertsConfigError)) throw err;
    // Add line numbers from the YAML document where the path can be found.
    const issues = err.issues.map((issue) => {
      const m = /^([^:]+): /.exec(issue);
      if (!m) return issue;
      const line = lineOf(doc, lineCounter, m[1]!);
      return line ? `${m[1]} (line ${line}): ${issue.slice(m[0].length)}` : issue;
    });
    throw new AlertsConfigError(path, issues);
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function lineOf(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: string): number | null {
  const keys: Array<string | number> = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
    keys.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  // Walk down as far as the path exists; report the deepest node found.
  let node: unknown = doc.contents;
  let found: unknown = null;
  for (const k of keys) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === k);
      if (!pair) break;
      found = pair.key;
      node = pair.value;
      found = node ?? found;
    } else if (isSeq(node) && typeof k === 'number') {
      node = node.items[k];
      if (!node) break;
      found = node;
    } else break;
  }
  const range = (found as { range?: [number, number, number] } | null)?.range;
  return range ? lc.linePos(range[0]).line : null;
}
