/**
 * The server's e-mail sender (nudges now, scheduled reports later): nodemailer over SMTP, set by
 * `GPUPULSE_SMTP_URL` (`smtp://host:25`, `smtp://user:pass@host:587` with STARTTLS when offered,
 * `smtps://user:pass@host:465`) and `GPUPULSE_SMTP_FROM`. Every attempt has a timeout; failures are
 * retried with backoff; a bounded number of messages wait at once (the excess is dropped and
 * counted). Credentials never reach a log: only `scheme://host:port` is ever shown.
 */
import { backoffDelay } from '@gpupulse/node';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import { redactSmtpUrl, smtpUrlProblem } from './smtp-url.ts';

export { redactSmtpUrl, smtpUrlProblem };

import { Counter, type Registry } from 'prom-client';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Extra headers (e.g. `Content-Language`). */
  headers?: Record<string, string>;
  /** Attachments (reports): name, content and type. */
  attachments?: Array<{ filename: string; content: Buffer | string; contentType?: string }>;
}

/** What became of one message. */
export type MailResult = 'sent' | 'failed' | 'dropped' | 'not-configured';

export interface Mailer {
  /** False when no SMTP server is set: `send` answers `not-configured` and sends nothing. */
  readonly configured: boolean;
  /** `smtp://host:port` (no credentials) or `not configured`. */
  describe(): string;
  send(message: MailMessage): Promise<MailResult>;
  close(): Promise<void>;
}

export interface MailObserver {
  /** One message delivered or given up on. */
  sent?(result: 'ok' | 'failed'): void;
  retried?(): void;
  dropped?(n: number): void;
}

export interface SmtpMailerOptions {
  /** `GPUPULSE_SMTP_URL`; null: not configured. */
  url: string | null;
  /** Sender address (`GPUPULSE_SMTP_FROM`); default `gpupulse@<hostname of the SMTP URL>`. */
  from?: string | null;
  logger?: Logger;
  observer?: MailObserver;
  /** Per attempt: connect, greeting and socket inactivity (default 10 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  maxRetries?: number;
  /** First retry delay (default 2 s; doubles, ±25 % jitter, capped at 60 s: @gpupulse/node's backoffDelay). */
  initialBackoffMs?: number;
  /** Messages waiting or being sent at once (default 200). */
  maxPending?: number;
  random?: () => number;
}

/** An SMTP 4xx answer or a network error is worth another try; a 5xx answer is not. */
function retryable(err: unknown): boolean {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code !== 'number' || code < 500;
}

export class SmtpMailer implements Mailer {
  readonly configured: boolean;
  private readonly transport: ReturnType<typeof nodemailer.createTransport> | null;
  private readonly from: string;
  private readonly where: string;
  private readonly log: Logger | undefined;
  private readonly observer: MailObserver;
  private readonly maxRetries: number;
  private readonly initialBackoffMs: number;
  private readonly maxPending: number;
  private readonly random: () => number;
  private pending = 0;
  private closed = false;
  private readonly inflight = new Set<Promise<MailResult>>();

  constructor(opts: SmtpMailerOptions) {
    this.log = opts.logger;
    this.observer = opts.observer ?? {};
    this.maxRetries = opts.maxRetries ?? 3;
    this.initialBackoffMs = opts.initialBackoffMs ?? 2000;
    this.maxPending = opts.maxPending ?? 200;
    this.random = opts.random ?? Math.random;
    const url = opts.url;
    if (url) {
      const problem = smtpUrlProblem(url);
      if (problem) throw new Error(`GPUPULSE_SMTP_URL ${problem}`);
    }
    this.configured = !!url;
    this.where = url ? redactSmtpUrl(url) : 'not configured';
    this.from = opts.from ?? `gpupulse@${url ? new URL(url).hostname : 'localhost'}`;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    this.transport = url
      ? nodemailer.createTransport({
          url,
          connectionTimeout: timeoutMs,
          greetingTimeout: timeoutMs,
          socketTimeout: timeoutMs,
          dnsTimeout: timeoutMs,
        })
      : null;
  }

  describe(): string {
    return this.where;
  }

  send(message: MailMessage): Promise<MailResult> {
    if (!this.transport) return Promise.resolve('not-configured');
    if (this.closed) return Promise.resolve('dropped');
    if (this.pending >= this.maxPending) {
      this.observer.dropped?.(1);
      this.log?.warn({ smtp: this.where, pending: this.pending }, 'too many e-mails waiting; one dropped');
      return Promise.resolve('dropped');
    }
    this.pending++;
    const p = this.deliver(message).finally(() => {
      this.pending--;
      this.inflight.delete(p);
    });
    this.inflight.add(p);
    return p;
  }

  private async deliver(m: MailMessage): Promise<MailResult> {
    const transport = this.transport!;
    for (let attempt = 0; ; attempt++) {
      try {
        await transport.sendMail({
          from: this.from,
          to: m.to,
          subject: m.subject,
          text: m.text,
          html: m.html,
          headers: m.headers,
          attachments: m.attachments,
        });
        this.observer.sent?.('ok');
        return 'sent';
      } catch (err) {
        const why = (err as Error).message ?? String(err);
        if (!retryable(err) || attempt >= this.maxRetries || this.closed) {
          this.observer.sent?.('failed');
          this.log?.error(
            { smtp: this.where, err: why, attempts: attempt + 1 },
            'e-mail delivery failed; giving up',
          );
          return 'failed';
        }
        this.observer.retried?.();
        const delay = backoffDelay(attempt, {
          initialMs: this.initialBackoffMs,
          maxMs: 60_000,
          random: this.random,
        });
        this.log?.warn({ smtp: this.where, err: why, delay }, 'e-mail delivery failed; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  }

  /** Stops retries and waits (bounded) for messages being sent. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
    this.transport?.close();
  }
}

/** Prometheus counters for a mailer (registered on `registry`). */
export function mailMetrics(registry: Registry): MailObserver {
  const registers = [registry];
  const sent = new Counter({
    name: 'gpupulse_mail_messages_total',
    help: 'E-mails by outcome: ok (delivered to the SMTP server) or failed (given up on)',
    labelNames: ['result'],
    registers,
  });
  const retried = new Counter({
    name: 'gpupulse_mail_retries_total',
    help: 'E-mail delivery retries (network errors, timeouts, SMTP 4xx)',
    registers,
  });
  const dropped = new Counter({
    name: 'gpupulse_mail_dropped_total',
    help: 'E-mails dropped because too many were waiting',
    registers,
  });
  for (const r of ['ok', 'failed']) sent.inc({ result: r }, 0);
  return {
    sent: (result) => sent.inc({ result }),
    retried: () => retried.inc(),
    dropped: (n) => dropped.inc(n),
  };
}
