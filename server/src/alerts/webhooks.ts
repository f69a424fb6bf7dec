import type { Alert, AlertSeverity } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { WebhookTarget } from './config.ts';

/** Hooks for metrics. */
export interface WebhookObserver {
  /** One message delivered (`ok`) or given up on (`failed`: 4xx, or retries exhausted). */
  sent?(result: 'ok' | 'failed', url: string): void;
  /** One retry scheduled (network error, 5xx, 429). */
  retried?(url: string): void;
  /** Alert changes held back by the rate limit (they go out in a summary). */
  rateLimited?(url: string, n: number): void;
  /** Messages dropped because the queue of a webhook was full. */
  dropped?(url: string, n: number): void;
}

export interface WebhookNotifierOptions {
  targets: readonly WebhookTarget[];
  clock: Clock;
  logger?: Logger;
  observer?: WebhookObserver;
  /** First retry delay (default 1 s; doubles, full jitter, capped at 30 s). */
  initialBackoffMs?: number;
  /** Messages queued per webhook (default 100; beyond it the oldest are dropped and counted). */
  maxQueue?: number;
  /** Public URL of the dashboard, linked from messages. */
  dashboardUrl?: string | null;
  random?: () => number;
}

/** The generic JSON body. */
export interface WebhookJsonBody {
  source: 'gpupulse';
  kind: 'alert' | 'summary';
  text: string;
  alerts: Alert[];
  /** `summary`: alert changes held back by the rate limit since the last message. */
  suppressed?: number;
  suppressedByRule?: Record<string, number>;
}

/** A Slack-compatible body (incoming webhooks; Mattermost and others accept it too). */
export interface SlackBody {
  text: string;
  blocks?: Array<Record<string, unknown>>;
}

interface Message {
  kind: 'alert' | 'summary';
  alerts: Alert[];
  suppressed: number;
  suppressedByRule: Record<string, number>;
}

const RANK: Record<AlertSeverity, number> = { info: 0, warning: 1, critical: 2 };
const ICON: Record<AlertSeverity, string> = {
  critical: ':red_circle:',
  warning: ':warning:',
  info: ':information_source:',
};

export function alertText(a: Alert): string {
  return a.state === 'firing'
    ? `[${a.severity.toUpperCase()}] ${a.rule} firing on ${a.node}: ${a.message}`
    : `[RESOLVED] ${a.rule} on ${a.node}: ${a.message} (after ${Math.round(((a.endedAt ?? a.startedAt) - a.startedAt) / 1000)} s)`;
}

function summaryText(m: Message): string {
  const rules = Object.entries(m.suppressedByRule)
    .map(([r, n]) => `${r} ×${n}`)
    .join(', ');
  return `gpupulse: ${m.suppressed} more alert change(s) held back by the rate limit (${rules})`;
}

export function jsonBody(m: Message): WebhookJsonBody {
  return m.kind === 'alert'
    ? { source: 'gpupulse', kind: 'alert', text: m.alerts.map(alertText).join('\n'), alerts: m.alerts }
    : {
        source: 'gpupulse',
        kind: 'summary',
        text: summaryText(m),
        alerts: [],
        suppressed: m.suppressed,
        suppressedByRule: m.suppressedByRule,
      };
}

/**
 * A Slack body. Every value that comes from outside (node, GPU, project and rule names, messages,
 * the dashboard URL) is escaped with Slack's `&amp;` `&lt;` `&gt;`, so nothing in it can become a
 * mention (`<!channel>`), a link (`<https://…|text>`) or a date token; the only markup is our own.
 */
export function slackBody(m: Message, dashboardUrl?: string | null): SlackBody {
  if (m.kind === 'summary') return { text: escapeSlack(summaryText(m)) };
  const a = m.alerts[0]!;
  const icon = a.state === 'firing' ? ICON[a.severity] : ':white_check_mark:';
  const text = `${icon} ${escapeSlack(alertText(a))}`;
  const e = escapeSlack;
  const fields = [
    `*Rule*\n${e(a.rule)}`,
    `*Node*\n${e(a.node)}`,
    ...(a.gpuIndex !== null ? [`*GPU*\n${a.gpuIndex}${a.gpuUuid ? ` (${e(a.gpuUuid)})` : ''}`] : []),
    ...(a.project ? [`*Project*\n${e(a.project)}`] : []),
    `*Started*\n<!date^${Math.floor(a.startedAt / 1000)}^{date_short_pretty} {time_secs}|${new Date(a.startedAt).toISOString()}>`,
  ];
  const blocks: Array<Record<string, unknown>> = [
    { type: 'section', text: { type: 'mrkdwn', text } },
    { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: f })) },
  ];
  if (dashboardUrl) {
    // `|` ends a link's URL in Slack's syntax: percent-encoded so the link text stays ours.
    const url = e(dashboardUrl).replace(/\|/g, '%7C');
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `<${url}|Open gpupulse>` }] });
  }
  return { text, blocks };
}

/** Slack's escaping for text: `&`, `<`, `>` (https://api.slack.com/reference/surfaces/formatting#escaping). */
export function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

class Target {
  readonly queue: Message[] = [];
  tokens: number;
  refilledAt: number;
  /** Changes held back by the rate limit, not yet summarised. */
  suppressed = 0;
  suppressedByRule: Record<string, number> = {};
  busy = false;
  timer: NodeJS.Timeout | null = null;
  constructor(
    readonly t: WebhookTarget,
    now: number,
  ) {
    this.tokens = t.ratePerMinute;
    this.refilledAt = now;
  }
}

/**
 * Sends alert changes to webhooks: one message per alert change (generic JSON or a Slack body),
 * POSTed with a timeout, retried with backoff on network errors, 5xx and 429 (honouring a short
 * `Retry-After`), given up on other 4xx. A token bucket per webhook (`ratePerMinute`, burst of the
 * same size) limits messages; changes beyond it are counted and coalesced into one summary
 * message sent when a token is free again. Bounded queue per webhook; drops counted.
 */
export class WebhookNotifier {
  private readonly targets: Target[];
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly observer: WebhookObserver;
  private readonly initialBackoffMs: number;
  private readonly maxQueue: number;
  private readonly dashboardUrl: string | null;
  private readonly random: () => number;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(opts: WebhookNotifierOptions) {
    this.clock = opts.clock;
    this.targets = opts.targets.map((t) => new Target(t, opts.clock.now()));
    this.logger = opts.logger;
    this.observer = opts.observer ?? {};
    this.initialBackoffMs = opts.initialBackoffMs ?? 1000;
    this.maxQueue = opts.maxQueue ?? 100;
    this.dashboardUrl = opts.dashboardUrl ?? null;
    this.random = opts.random ?? Math.random;
  }

  get size(): number {
    return this.targets.length;
  }

  /** Queues one message per changed alert for every webhook whose severity filter lets it through. */
  notify(changed: readonly Alert[]): void {
    if (this.closed) return;
    for (const target of this.targets) {
      for (const a of changed) {
        if (RANK[a.severity] < RANK[target.t.minSeverity]) continue;
        this.refill(target);
        if (target.tokens >= 1) {
          target.tokens -= 1;
          this.enqueue(target, { kind: 'alert', alerts: [a], suppressed: 0, suppressedByRule: {} });
        } else {
          target.suppressed++;
          target.suppressedByRule[a.rule] = (target.suppressedByRule[a.rule] ?? 0) + 1;
          this.observer.rateLimited?.(target.t.url, 1);
          this.scheduleSummary(target);
        }
      }
    }
  }

  /** Stops timers; waits (bounded) for messages being sent. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    for (const t of this.targets) if (t.timer) clearTimeout(t.timer);
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
  }

  private refill(t: Target): void {
    const now = this.clock.now();
    const perMs = t.t.ratePerMinute / 60_000;
    t.tokens = Math.min(t.t.ratePerMinute, t.tokens + (now - t.refilledAt) * perMs);
    t.refilledAt = now;
  }

  private scheduleSummary(t: Target): void {
    if (t.timer || this.closed) return;
    const wait = Math.max(50, Math.ceil(((1 - t.tokens) * 60_000) / t.t.ratePerMinute));
    t.timer = setTimeout(() => {
      t.timer = null;
      this.flushSummary(t);
    }, wait);
    t.timer.unref();
  }

  /** Sends the held-back count as one message when a token is free (tests call it after moving the clock). */
  flushSummaries(): void {
    for (const t of this.targets) this.flushSummary(t);
  }

  private flushSummary(t: Target): void {
    if (t.suppressed === 0 || this.closed) return;
    this.refill(t);
    if (t.tokens < 1) {
      this.scheduleSummary(t);
      return;
    }
    t.tokens -= 1;
    this.enqueue(t, {
      kind: 'summary',
      alerts: [],
      suppressed: t.suppressed,
      suppressedByRule: t.suppressedByRule,
    });
    t.suppressed = 0;
    t.suppressedByRule = {};
  }

  private enqueue(t: Target, m: Message): void {
    t.queue.push(m);
    if (t.queue.length > this.maxQueue) {
      const n = t.queue.length - this.maxQueue;
      t.queue.splice(0, n);
      this.observer.dropped?.(t.t.url, n);
    }
    this.pump(t);
  }

  private pump(t: Target): void {
    if (t.busy || this.closed) return;
    const m = t.queue.shift();
    if (!m) return;
    t.busy = true;
    const p = this.deliver(t.t, m).finally(() => {
      t.busy = false;
      this.inflight.delete(p);
      this.pump(t);
    });
    this.inflight.add(p);
  }

  private async deliver(target: WebhookTarget, m: Message): Promise<void> {
    const body = JSON.stringify(target.format === 'slack' ? slackBody(m, this.dashboardUrl) : jsonBody(m));
    const log = this.logger?.child({ webhook: redact(target.url) });
    for (let attempt = 0; ; attempt++) {
      let retryAfterMs: number | null = null;
      let why: string;
      try {
        const res = await fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'gpupulse-server' },
          body,
          signal: AbortSignal.timeout(target.timeoutMs),
        });
        await res.body?.cancel().catch(() => {});
        if (res.ok) {
          this.observer.sent?.('ok', target.url);
          return;
        }
        why = `HTTP ${res.status}`;
        if (res.status !== 429 && res.status < 500) {
          this.observer.sent?.('failed', target.url);
          log?.error({ status: res.status }, 'webhook refused the message (4xx); not retried');
          return;
        }
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra >= 0 && ra <= 60) retryAfterMs = ra * 1000;
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
      }
      if (attempt >= target.maxRetries || this.closed) {
        this.observer.sent?.('failed', target.url);
        log?.error({ err: why, attempts: attempt + 1 }, 'webhook delivery failed; giving up');
        return;
      }
      this.observer.retried?.(target.url);
      const exp = Math.min(30_000, this.initialBackoffMs * 2 ** attempt);
      const delay = retryAfterMs ?? Math.round(exp / 2 + (this.random() * exp) / 2);
      log?.debug({ err: why, delay }, 'webhook delivery failed; retrying');
      await new Promise((r) => setTimeout(r, delay).unref());
    }
  }
}

/** A webhook URL for logs: origin only (paths of Slack-style hooks are secrets). */
export function redact(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(bad url)';
  }
}
