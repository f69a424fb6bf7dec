import type { Alert, AlertsList, GpuEvent, NodeView } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { MetricPoint } from '../storage/metric-store.ts';
import { alertPoint } from '../storage/schema.ts';
import type { AlertsConfig } from './config.ts';
import { AlertEngine, type AlertFilter } from './engine.ts';
import { WebhookNotifier, type WebhookObserver } from './webhooks.ts';

export interface AlertServiceOptions {
  config: AlertsConfig;
  clock: Clock;
  logger?: Logger;
  /** The live fleet (every node), read once per tick. */
  nodes(): readonly NodeView[];
  /** Where alert points go (the write buffer). */
  write(points: MetricPoint[]): void;
  /** Pushes changed alerts to dashboards (`alerts:changed`). */
  publish(list: AlertsList): void;
  webhookObserver?: WebhookObserver;
  /** Called with each change (metrics). */
  onChange?(changed: readonly Alert[]): void;
  /** Webhook retry base delay (tests). */
  webhookBackoffMs?: number;
  /**
   * False: evaluate only — a standby process of a cluster keeps the same alert state but writes
   * no points, pushes nothing to dashboards and sends no webhooks (the lease holder does).
   * Default: always active.
   */
  active?(): boolean;
  /**
   * Of the alerts about to be notified by webhook, those still to notify (cluster: not already
   * notified by a previous lease holder; it remembers them). Default: all.
   */
  gate?(alerts: Alert[]): Alert[];
  /** An acknowledgement was made here (cluster: the other processes apply it too). */
  acknowledged?(alertId: string, ack: NonNullable<Alert['acknowledged']>): void;
}

/** Alerts for one server: the engine, its storage/dashboard/webhook outlets, driven by `tick()`. */
export class AlertService {
  readonly engine: AlertEngine;
  readonly webhooks: WebhookNotifier;
  private readonly opts: AlertServiceOptions;
  private readonly log: Logger | undefined;
  /** Acknowledgements by alert id, and webhook silences by rule + subject (bounded, pruned on use). */
  private readonly acks = new Map<string, NonNullable<Alert['acknowledged']>>();
  private readonly silences = new Map<string, number>();

  constructor(opts: AlertServiceOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.engine = new AlertEngine({
      rules: opts.config.rules,
      clock: opts.clock,
      maxResolved: opts.config.maxResolved,
      logger: opts.logger,
    });
    this.webhooks = new WebhookNotifier({
      targets: opts.config.webhooks,
      clock: opts.clock,
      logger: opts.logger?.child({ component: 'webhooks' }),
      observer: opts.webhookObserver,
      initialBackoffMs: opts.webhookBackoffMs,
    });
  }

  /** Evaluates the rules now (the server calls it every second). Returns what changed. */
  tick(): Alert[] {
    let changed: Alert[];
    try {
      changed = this.engine.evaluate(this.opts.nodes());
    } catch (err) {
      this.log?.error({ err }, 'alert evaluation failed');
      return [];
    }
    if (changed.length === 0) return changed;
    this.opts.onChange?.(changed);
    if (this.opts.active && !this.opts.active()) return changed;
    this.opts.write(changed.map(alertPoint));
    const now = this.opts.clock.now();
    this.opts.publish({ serverTime: now, alerts: changed.map((a) => this.decorate(a)) });
    let loud = this.silences.size === 0 ? changed : changed.filter((a) => !this.silenced(a, now));
    if (this.opts.gate && loud.length > 0) loud = this.opts.gate(loud);
    if (loud.length > 0) this.webhooks.notify(loud);
    return changed;
  }

  /** New rules from a reloaded alerts file (webhooks and `maxResolved` stay as started). */
  setRules(rules: AlertsConfig['rules']): void {
    this.engine.setRules(rules);
  }

  recordEvents(
    node: string,
    events: readonly GpuEvent[],
    gpus?: readonly { uuid: string; pciBusId?: string | null }[],
  ): void {
    this.engine.recordEvents(node, events, gpus);
  }

  list(filter: AlertFilter = {}): AlertsList {
    const list = this.engine.list(filter);
    return this.acks.size === 0 ? list : { ...list, alerts: list.alerts.map((a) => this.decorate(a)) };
  }

  /** What a dashboard gets on connect: firing and recently resolved alerts. */
  snapshot(): AlertsList {
    return this.list({ state: 'all' });
  }

  /**
   * Acknowledges the alert `id` (firing or recently resolved) on behalf of `by`; with `silenceMs`,
   * webhooks stay quiet for the same rule and subject (node, GPU) until then. Dashboards get the
   * alert again with `acknowledged` set. Null when there is no such alert.
   */
  acknowledge(id: string, by: string, silenceMs: number | null): Alert | null {
    const alert = this.find(id);
    if (!alert) return null;
    const now = this.opts.clock.now();
    const silencedUntil = silenceMs && silenceMs > 0 ? now + silenceMs : null;
    this.prune(now);
    const ack = { by, at: now, silencedUntil };
    this.acks.set(alert.id, ack);
    if (silencedUntil !== null) this.silences.set(subjectOf(alert), silencedUntil);
    const out = this.decorate(alert);
    this.opts.publish({ serverTime: now, alerts: [out] });
    this.opts.acknowledged?.(alert.id, ack);
    return out;
  }

  /** Applies an acknowledgement made on another process of a cluster (that process pushed it). */
  applyAcknowledgement(id: string, ack: NonNullable<Alert['acknowledged']>): void {
    const alert = this.find(id);
    if (!alert) return;
    this.prune(this.opts.clock.now());
    this.acks.set(alert.id, ack);
    if (ack.silencedUntil !== null) this.silences.set(subjectOf(alert), ack.silencedUntil);
  }

  /**
   * The alert `id`, or (an id from another process of a cluster, whose tick saw the condition
   * start at another instant) the alert of the same rule and subject — firing first.
   */
  private find(id: string): Alert | null {
    const all = this.engine.list({ state: 'all' }).alerts;
    const exact = all.find((a) => a.id === id);
    if (exact) return exact;
    const cut = id.lastIndexOf(':');
    if (cut <= 0) return null;
    const prefix = id.slice(0, cut + 1);
    return all.find((a) => a.id.startsWith(prefix)) ?? null;
  }

  private decorate(a: Alert): Alert {
    const ack = this.acks.get(a.id);
    return ack ? { ...a, acknowledged: ack } : a;
  }

  private silenced(a: Alert, now: number): boolean {
    const until = this.silences.get(subjectOf(a));
    return until !== undefined && until > now;
  }

  private prune(now: number): void {
    for (const [k, until] of this.silences) if (until <= now) this.silences.delete(k);
    if (this.acks.size < 1000) return;
    const listed = new Set(this.engine.list({ state: 'all' }).alerts.map((a) => a.id));
    for (const id of this.acks.keys()) if (!listed.has(id)) this.acks.delete(id);
  }

  close(): Promise<void> {
    return this.webhooks.close();
  }
}

const subjectOf = (a: Alert): string => `${a.rule}\u0000${a.node}\u0000${a.gpuUuid ?? ''}`;

const STATES = ['firing', 'resolved', 'all'] as const;

/**
 * `GET /api/v1/alerts?state=firing|resolved|all&node=&rule=` → `{ status, body }`.
 * Default state: `all` (firing first, then the most recent resolved).
 */
export function alertsQuery(
  service: AlertService,
  params: URLSearchParams,
): { status: number; body: unknown } {
  const state = params.get('state') ?? 'all';
  if (!(STATES as readonly string[]).includes(state)) {
    return {
      status: 400,
      body: { error: { code: 'VALIDATION', message: `state must be one of ${STATES.join(', ')}` } },
    };
  }
  const node = params.get('node') || undefined;
  const rule = params.get('rule') || undefined;
  if ((node && node.length > 256) || (rule && rule.length > 64)) {
    return { status: 400, body: { error: { code: 'VALIDATION', message: 'node or rule is too long' } } };
  }
  return { status: 200, body: service.list({ state: state as AlertFilter['state'], node, rule }) };
}
