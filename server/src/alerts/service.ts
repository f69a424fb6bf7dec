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
}

/** Alerts for one server: the engine, its storage/dashboard/webhook outlets, driven by `tick()`. */
export class AlertService {
  readonly engine: AlertEngine;
  readonly webhooks: WebhookNotifier;
  private readonly opts: AlertServiceOptions;
  private readonly log: Logger | undefined;

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
    this.opts.write(changed.map(alertPoint));
    this.opts.publish({ serverTime: this.opts.clock.now(), alerts: changed });
    this.webhooks.notify(changed);
    return changed;
  }

  recordEvents(
    node: string,
    events: readonly GpuEvent[],
    gpus?: readonly { uuid: string; pciBusId?: string | null }[],
  ): void {
    this.engine.recordEvents(node, events, gpus);
  }

  list(filter: AlertFilter = {}): AlertsList {
    return this.engine.list(filter);
  }

  /** What a dashboard gets on connect: firing and recently resolved alerts. */
  snapshot(): AlertsList {
    return this.engine.list({ state: 'all' });
  }

  close(): Promise<void> {
    return this.webhooks.close();
  }
}

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
