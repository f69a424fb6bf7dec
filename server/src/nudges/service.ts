/**
 * Wires the nudge engine into the server: storage (`gpupulse_nudge` through the write buffer, read
 * back at start), metrics, the ops alert outlet and the HTTP routes `GET /api/v1/nudges` (viewer)
 * and `GET|POST /nudge/snooze` (open: the signed link is the credential).
 */
import type { IncomingMessage } from 'node:http';
import type { Alert, NudgeRecord } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { WebhookTarget } from '../alerts/config.ts';
import type { Clock } from '../clock.ts';
import type { GpuState } from '../fleet/fleet-state.ts';
import { HttpError, type Route, sendJson } from '../http/routes.ts';
import type { Mailer } from '../mail/mailer.ts';
import { contactOf, type Language, type ProjectsConfig } from '../projects/projects-file.ts';
import type { MetricPoint, MetricStore } from '../storage/metric-store.ts';
import { NudgeEngine, type NudgeEngineOptions } from './engine.ts';
import { SnoozeLinks } from './links.ts';
import { formatTime, snoozePage } from './messages.ts';
import { NudgeWebhookSender } from './webhooks.ts';

export const MEASUREMENT_NUDGE = 'gpupulse_nudge';

/** One record as a point: tags for filtering, the whole record as JSON (read back at start). */
export function nudgePoint(r: NudgeRecord & { linkId?: string }, rp?: string): MetricPoint {
  const tags: Record<string, string> = { kind: r.kind, host: r.node, user: r.user };
  if (r.project) tags.project = r.project;
  const floats: Record<string, number> = {};
  if (r.idleGpuHours !== null) floats.idle_gpu_hours = r.idleGpuHours;
  if (r.idleMsAfterNudge !== null) floats.idle_ms_after_nudge = r.idleMsAfterNudge;
  return {
    measurement: MEASUREMENT_NUDGE,
    tags,
    floats,
    strings: { record: JSON.stringify(r) },
    ts: r.at,
    ...(rp ? { rp } : {}),
  };
}

export interface NudgeServiceOptions {
  clock: Clock;
  projects: () => ProjectsConfig;
  gpus: (fn: (g: GpuState) => void) => void;
  mailer: Mailer;
  webhookTargets: readonly WebhookTarget[];
  /** The ops outlet: the alert service's webhooks; returns how many got it. */
  ops: (alert: Alert) => number;
  dataDir: string;
  baseUrl: () => string;
  write: (points: MetricPoint[]) => void;
  store: MetricStore;
  /** Retention policy of the nudge points (the longest tier), if any. */
  rp?: string;
  registry: Registry;
  projectIdleToday?: (project: string) => number | null;
  projectShare?: NudgeEngineOptions['projectShare'];
  logger?: Logger;
  /** How far back records are read at start (default 7 days). */
  restoreMs?: number;
}

export interface NudgeService {
  engine: NudgeEngine;
  routes: Route[];
  /** Reads recent records back from storage (at start). */
  restore(): Promise<number>;
  tick(): void;
  close(): Promise<void>;
}

export function createNudgeService(opts: NudgeServiceOptions): NudgeService {
  const log = opts.logger;
  const registers = [opts.registry];
  const recorded = new Counter({
    name: 'gpupulse_nudges_total',
    help: 'Nudge records by kind: nudge (owner told), escalation (lead told), ops, snooze, resolved',
    labelNames: ['kind'],
    registers,
  });
  const held = new Counter({
    name: 'gpupulse_nudges_held_total',
    help: 'Messages to people held back: quiet-hours (deferred) or daily-cap (not sent)',
    labelNames: ['reason'],
    registers,
  });
  const emails = new Counter({
    name: 'gpupulse_nudge_emails_total',
    help: 'Nudge e-mails by outcome (sent, failed, dropped, not-configured, no-address)',
    labelNames: ['result'],
    registers,
  });
  const hooks = new Counter({
    name: 'gpupulse_nudge_webhook_messages_total',
    help: 'Nudge webhook messages by outcome (ok, failed, retried, dropped)',
    labelNames: ['result'],
    registers,
  });
  const webhooks = new NudgeWebhookSender(opts.webhookTargets, {
    logger: log,
    observer: {
      sent: (r) => hooks.inc({ result: r }),
      retried: () => hooks.inc({ result: 'retried' }),
      dropped: (n) => hooks.inc({ result: 'dropped' }, n),
    },
  });
  const engine = new NudgeEngine({
    clock: opts.clock,
    projects: opts.projects,
    gpus: opts.gpus,
    mailer: opts.mailer,
    webhooks,
    ops: opts.ops,
    links: SnoozeLinks.open(opts.dataDir),
    baseUrl: opts.baseUrl,
    record: (r) => opts.write([nudgePoint(r, opts.rp)]),
    projectIdleToday: opts.projectIdleToday,
    projectShare: opts.projectShare,
    logger: log,
    observer: {
      recorded: (k) => recorded.inc({ kind: k }),
      held: (reason) => held.inc({ reason }),
      email: (result) => emails.inc({ result }),
    },
  });
  let toldNoSmtp = false;

  const langOf = (user: string | null): Language => {
    const cfg = opts.projects();
    return user ? contactOf(cfg, user).language : cfg.mail.defaultLanguage;
  };
  const html = (res: import('node:http').ServerResponse, status: number, body: string, head = false) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    });
    res.end(head ? undefined : body);
  };

  const routes: Route[] = [
    {
      path: '/api/v1/nudges',
      methods: ['GET'],
      role: 'viewer',
      handle: ({ res, head, query }) => {
        const get = (k: string) => {
          const v = query.get(k) ?? '';
          if (v.length > 256) throw new HttpError(400, 'VALIDATION', `${k} is longer than 256 characters`);
          return v || undefined;
        };
        const limitText = query.get('limit');
        const limit = limitText === null ? 200 : Number(limitText);
        if (!Number.isInteger(limit) || limit < 1 || limit > 5000)
          throw new HttpError(400, 'VALIDATION', 'limit must be a whole number 1..5000');
        sendJson(
          res,
          200,
          engine.list({
            node: get('node'),
            gpu: get('gpu'),
            user: get('user'),
            project: get('project'),
            limit,
          }),
          head,
        );
      },
    },
    {
      path: '/nudge/snooze',
      methods: ['GET', 'POST'],
      role: 'none',
      handle: async ({ req, res, query, head }) => {
        const s = opts.projects().nudge;
        if (req.method === 'POST') {
          const token = new URLSearchParams(await readForm(req)).get('t') ?? '';
          const out = engine.snooze(token);
          if (!out.ok) {
            html(
              res,
              out.reason === 'invalid' ? 400 : 410,
              snoozePage(langOf(out.user), { kind: out.reason }),
            );
            return;
          }
          const r = out.record;
          const lang = langOf(r.user);
          html(
            res,
            200,
            snoozePage(lang, {
              kind: 'done',
              gpu: `${r.node} / GPU ${r.gpuIndex ?? '?'}`,
              until: formatTime(r.until!, lang, s.timeZone),
            }),
          );
          return;
        }
        // GET shows a button: mail scanners that open links must not use up the link.
        const token = query.get('t') ?? '';
        const check = engine.checkLink(token);
        const lang = langOf(check.user);
        if (check.state !== 'ok') {
          html(res, check.state === 'invalid' ? 400 : 410, snoozePage(lang, { kind: check.state }), head);
          return;
        }
        html(
          res,
          200,
          snoozePage(lang, {
            kind: 'confirm',
            token,
            gpu: `${check.node} / GPU ${check.gpuIndex ?? '?'}`,
            snoozeMs: s.snoozeMs,
          }),
          head,
        );
      },
    },
  ];

  return {
    engine,
    routes,
    async restore() {
      const from = opts.clock.now() - (opts.restoreMs ?? 7 * 86_400_000);
      const source =
        opts.rp && opts.store.kind !== 'memory'
          ? `${quoteIdent(opts.rp)}.${quoteIdent(MEASUREMENT_NUDGE)}`
          : quoteIdent(MEASUREMENT_NUDGE);
      const result = await opts.store.query(`SELECT "record" FROM ${source} WHERE time >= ${from}ms`);
      const records: Array<NudgeRecord & { linkId?: string }> = [];
      for (const series of result.series) {
        const col = series.columns.indexOf('record');
        for (const row of series.values) {
          try {
            records.push(JSON.parse(String(row[col])) as NudgeRecord);
          } catch {
            // a damaged row is skipped
          }
        }
      }
      engine.restore(records);
      return records.length;
    },
    tick() {
      if (!toldNoSmtp && !opts.mailer.configured) {
        toldNoSmtp = true;
        log?.info(
          'nudges: e-mail not configured (GPUPULSE_SMTP_URL unset); nudges are recorded and shown, not mailed',
        );
      }
      try {
        engine.tick();
      } catch (err) {
        log?.error({ err }, 'nudge tick failed');
      }
    },
    close: () => webhooks.close(),
  };
}

const quoteIdent = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

async function readForm(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 8192) throw new HttpError(413, 'TOO_LARGE', 'the form is larger than 8 KiB');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
