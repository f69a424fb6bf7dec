/**
 * Nudges and escalations posted to the alert webhooks (`GPUPULSE_WEBHOOKS`, the alerts file), with
 * a per-user mention on Slack (`users.<name>.slack`). Each POST has the webhook's timeout; network
 * errors, 5xx and 429 are retried with backoff (the webhook's `maxRetries`); a bounded queue per
 * webhook (drops counted). Text from outside is escaped for Slack; the mention is our own markup.
 */
import type { NudgeRecord } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { WebhookTarget } from '../alerts/config.ts';
import { escapeSlack, redact } from '../alerts/webhooks.ts';

export interface NudgeWebhookMessage {
  kind: NudgeRecord['kind'];
  /** One line, plain text. */
  text: string;
  /** Slack member id of the person concerned. */
  mention: string | null;
  record: NudgeRecord;
}

export interface NudgeWebhookObserver {
  sent?(result: 'ok' | 'failed'): void;
  retried?(): void;
  dropped?(n: number): void;
}

export interface NudgeWebhooks {
  readonly size: number;
  /** Queues the message for every webhook; returns how many took it. */
  post(m: NudgeWebhookMessage): number;
  close(): Promise<void>;
}

export function nudgeSlackBody(m: NudgeWebhookMessage): { text: string } {
  const icon = m.kind === 'nudge' ? ':zzz:' : ':warning:';
  return { text: `${icon} ${m.mention ? `<@${m.mention}> ` : ''}${escapeSlack(m.text)}` };
}

export function nudgeJsonBody(m: NudgeWebhookMessage): Record<string, unknown> {
  return { source: 'gpupulse', kind: m.kind, text: m.text, mention: m.mention, nudge: m.record };
}

export class NudgeWebhookSender implements NudgeWebhooks {
  private readonly queues: Array<{ t: WebhookTarget; q: NudgeWebhookMessage[]; busy: boolean }>;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    targets: readonly WebhookTarget[],
    private readonly opts: {
      logger?: Logger;
      observer?: NudgeWebhookObserver;
      initialBackoffMs?: number;
      maxQueue?: number;
    } = {},
  ) {
    this.queues = targets.map((t) => ({ t, q: [], busy: false }));
  }

  get size(): number {
    return this.queues.length;
  }

  post(m: NudgeWebhookMessage): number {
    if (this.closed) return 0;
    const max = this.opts.maxQueue ?? 100;
    for (const x of this.queues) {
      x.q.push(m);
      if (x.q.length > max) {
        const n = x.q.length - max;
        x.q.splice(0, n);
        this.opts.observer?.dropped?.(n);
      }
      this.pump(x);
    }
    return this.queues.length;
  }

  private pump(x: (typeof this.queues)[number]): void {
    if (x.busy || this.closed) return;
    const m = x.q.shift();
    if (!m) return;
    x.busy = true;
    const p = this.deliver(x.t, m).finally(() => {
      x.busy = false;
      this.inflight.delete(p);
      this.pump(x);
    });
    this.inflight.add(p);
  }

  private async deliver(t: WebhookTarget, m: NudgeWebhookMessage): Promise<void> {
    const body = JSON.stringify(t.format === 'slack' ? nudgeSlackBody(m) : nudgeJsonBody(m));
    for (let attempt = 0; ; attempt++) {
      let why: string;
      try {
        const res = await fetch(t.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'gpupulse-server' },
          body,
          signal: AbortSignal.timeout(t.timeoutMs),
        });
        await res.body?.cancel().catch(() => {});
        if (res.ok) {
          this.opts.observer?.sent?.('ok');
          return;
        }
        why = `HTTP ${res.status}`;
        if (res.status !== 429 && res.status < 500) {
          this.opts.observer?.sent?.('failed');
          this.opts.logger?.error({ webhook: redact(t.url), status: res.status }, 'nudge webhook refused');
          return;
        }
      } catch (err) {
        why = (err as Error).message;
      }
      if (attempt >= t.maxRetries || this.closed) {
        this.opts.observer?.sent?.('failed');
        this.opts.logger?.error({ webhook: redact(t.url), err: why }, 'nudge webhook failed; giving up');
        return;
      }
      this.opts.observer?.retried?.();
      const exp = Math.min(30_000, (this.opts.initialBackoffMs ?? 1000) * 2 ** attempt);
      await new Promise((r) => setTimeout(r, Math.round(exp / 2 + (Math.random() * exp) / 2)).unref());
    }
  }

  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
  }
}
