/**
 * The nudge engine (server/README.md "Nudges"). Driven by `tick()` (every second, after the fleet
 * sweep) on an injected clock: a GPU held but idle (the fleet's rule: below the idle threshold for
 * the idle window) for `nudge.after` gets its process owner told; still idle `escalateAfter` after
 * that was due, the project lead; `opsAfter` after, ops (an alert through the webhooks). "I'm still
 * using it" (a signed single-use link) quiets one GPU and user for `nudge.snooze`. People are not
 * messaged in quiet hours (deferred, not dropped) nor more than `dailyCapPerUser` times a day;
 * projects with `nudge: false` are left alone. Every nudge, snooze, escalation and resolution is a
 * `NudgeRecord`: kept in memory (bounded) and handed to `record` (storage).
 */
import { randomBytes } from 'node:crypto';
import type { Alert, NudgeEmail, NudgeRecord, NudgeSnooze, NudgesList } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { GpuState } from '../fleet/fleet-state.ts';
import type { Mailer } from '../mail/mailer.ts';
import { contactOf, type Language, type ProjectsConfig } from '../projects/projects-file.ts';
import type { SnoozeLinks } from './links.ts';
import { formatTime, type NudgeFacts, renderNudge } from './messages.ts';
import type { NudgeWebhooks } from './webhooks.ts';

export interface NudgeObserver {
  recorded?(kind: NudgeRecord['kind']): void;
  /** A message to a person held back: quiet hours (once per holding) or the daily cap. */
  held?(reason: 'quiet-hours' | 'daily-cap'): void;
  email?(result: NudgeEmail): void;
}

export interface NudgeEngineOptions {
  clock: Clock;
  projects: () => ProjectsConfig;
  /** Every GPU with its shares and idle state (`fleet.forEachGpu`). */
  gpus: (fn: (g: GpuState) => void) => void;
  mailer: Mailer;
  webhooks?: NudgeWebhooks;
  /** Sends an ops alert (the alert webhooks); returns how many webhooks got it. */
  ops?: (alert: Alert) => number;
  links: SnoozeLinks;
  /** The dashboard's external URL, e.g. `https://gpupulse.example.org` (links in messages). */
  baseUrl: () => string;
  /** Storage of records (the write buffer). */
  record?: (r: NudgeRecord) => void;
  /** The project's idle-held GPU-hours today (live usage), when known. */
  projectIdleToday?: (project: string) => number | null;
  /** The project's fair share this month (live usage), when known. */
  projectShare?: (project: string) => {
    agreedGpuHours: number | null;
    usedGpuHours: number;
    usedPercent: number | null;
  } | null;
  logger?: Logger;
  observer?: NudgeObserver;
  /** Records kept in memory (default 5000). */
  maxRecords?: number;
}

interface Holding {
  key: string;
  node: string;
  gpuUuid: string;
  gpuIndex: number | null;
  user: string;
  project: string | null;
  process: string | null;
  share: number;
  idleSince: number;
  /** The snooze this schedule started from (a new snooze restarts it). */
  snoozeBase: number;
  userAt: number | null;
  userDone: boolean;
  leadDone: boolean;
  opsDone: boolean;
  deferredLogged: boolean;
}

const keyOf = (node: string, gpuUuid: string, user: string) => `${node}\u0000${gpuUuid}\u0000${user}`;

/** Minute of the day in a time zone, and the day (`YYYY-MM-DD`). */
function localClock(t: number, timeZone: string): { minute: number; day: string } {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(t));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '0';
  return {
    minute: Number(get('hour')) * 60 + Number(get('minute')),
    day: `${get('year')}-${get('month')}-${get('day')}`,
  };
}

export function inQuietHours(t: number, q: ProjectsConfig['nudge']['quietHours'], timeZone: string): boolean {
  if (!q) return false;
  const { minute } = localClock(t, timeZone);
  return q.startMin < q.endMin
    ? minute >= q.startMin && minute < q.endMin
    : minute >= q.startMin || minute < q.endMin;
}

export type SnoozeOutcome =
  | { ok: true; record: NudgeRecord }
  | { ok: false; reason: 'invalid' | 'expired' | 'used'; user: string | null };

export class NudgeEngine {
  private readonly holdings = new Map<string, Holding>();
  private readonly snoozes = new Map<string, NudgeSnooze>();
  /** Used link ids → until when to remember them (past a link's expiry it is refused anyway). */
  private readonly usedLinks = new Map<string, number>();
  private readonly perDay = new Map<string, { day: string; n: number }>();
  /** The last nudge per GPU and user read back at start, with what followed it. */
  private readonly restored = new Map<string, { nudge: NudgeRecord; lead: boolean; ops: boolean }>();
  /** Newest last. */
  private records: NudgeRecord[] = [];
  private readonly maxRecords: number;
  private readonly log: Logger | undefined;

  constructor(private readonly opts: NudgeEngineOptions) {
    this.maxRecords = opts.maxRecords ?? 5000;
    this.log = opts.logger;
  }

  /** Looks at every GPU now: starts, advances and ends holdings; sends what is due. */
  tick(): void {
    const now = this.opts.clock.now();
    const cfg = this.opts.projects();
    const s = cfg.nudge;
    const seen = new Set<string>();
    if (s.enabled) {
      this.opts.gpus((g) => {
        if (!g.idleHeld || g.idleSince === null || g.status !== 'online') return;
        const byUser = new Map<string, { share: number; project: string; process: string }>();
        for (const sh of g.shares) {
          if (!sh.user) continue;
          const prev = byUser.get(sh.user);
          // The part of the physical GPU (MIG-weighted where the fleet says so).
          const part = sh.weight ?? sh.share;
          if (prev) prev.share += part;
          else byUser.set(sh.user, { share: part, project: sh.project, process: sh.process.name });
        }
        for (const [user, x] of byUser) {
          if (cfg.projects.get(x.project)?.nudge === false) continue;
          const key = keyOf(g.node, g.gpu.uuid, user);
          seen.add(key);
          let h = this.holdings.get(key);
          if (!h || h.idleSince !== g.idleSince) {
            if (h) this.resolve(h, now);
            h = this.start(key, g, user, x.project, now);
          }
          h.gpuIndex = g.gpu.index;
          h.project = x.project;
          h.process = x.process;
          h.share = x.share;
        }
      });
    }
    for (const h of this.holdings.values()) {
      if (!seen.has(h.key)) {
        this.resolve(h, now);
        this.holdings.delete(h.key);
        continue;
      }
      this.advance(h, cfg, now);
    }
    for (const [k, sn] of this.snoozes) if (sn.until <= now) this.snoozes.delete(k);
    for (const [id, until] of this.usedLinks) if (until <= now) this.usedLinks.delete(id);
  }

  private start(key: string, g: GpuState, user: string, project: string, now: number): Holding {
    const h: Holding = {
      key,
      node: g.node,
      gpuUuid: g.gpu.uuid,
      gpuIndex: g.gpu.index,
      user,
      project,
      process: null,
      share: 1,
      idleSince: g.idleSince!,
      snoozeBase: 0,
      userAt: null,
      userDone: false,
      leadDone: false,
      opsDone: false,
      deferredLogged: false,
    };
    // After a restart the fleet's idle clock starts again: a nudge sent before the restart for
    // this GPU and user, within the escalation horizon, keeps its schedule instead of going twice.
    const cfg = this.opts.projects().nudge;
    const last = this.restored.get(key);
    this.restored.delete(key);
    if (last && now - last.nudge.at < cfg.opsAfterMs + cfg.afterMs) {
      h.userAt = last.nudge.at;
      h.userDone = true;
      h.leadDone = last.lead;
      h.opsDone = last.ops;
      h.idleSince = Math.min(h.idleSince, last.nudge.idleSince);
    }
    this.holdings.set(key, h);
    return h;
  }

  private advance(h: Holding, cfg: ProjectsConfig, now: number): void {
    const s = cfg.nudge;
    const snooze = this.snoozes.get(h.key);
    if (snooze && snooze.until > now) return;
    if (snooze && snooze.until !== h.snoozeBase) {
      // The snooze ran out and the GPU is still held idle: the schedule starts again.
      h.snoozeBase = snooze.until;
      h.userDone = h.leadDone = h.opsDone = false;
      h.userAt = null;
      h.deferredLogged = false;
    }
    const due = h.userAt ?? Math.max(h.idleSince + s.afterMs, h.snoozeBase);
    if (now < due) return;
    const quiet = inQuietHours(now, s.quietHours, s.timeZone);
    if (!h.userDone) {
      if (quiet) {
        if (!h.deferredLogged) {
          h.deferredLogged = true;
          this.opts.observer?.held?.('quiet-hours');
        }
      } else {
        h.userDone = true;
        if (this.takeCap(h.user, s.dailyCapPerUser, s.timeZone, now)) {
          h.userAt = now;
          this.send(h, cfg, 'user', now);
        } else {
          this.opts.observer?.held?.('daily-cap');
          this.log?.info({ user: h.user, node: h.node, gpu: h.gpuIndex }, 'nudge held back: daily cap');
        }
      }
    }
    if (!h.leadDone && now >= due + s.escalateAfterMs && !quiet) {
      h.leadDone = true;
      this.send(h, cfg, 'lead', now);
    }
    if (!h.opsDone && now >= due + s.opsAfterMs) {
      h.opsDone = true;
      this.sendOps(h, cfg, now);
    }
  }

  private takeCap(user: string, cap: number, timeZone: string, now: number): boolean {
    const { day } = localClock(now, timeZone);
    const c = this.perDay.get(user);
    const n = c && c.day === day ? c.n : 0;
    if (n >= cap) return false;
    this.perDay.set(user, { day, n: n + 1 });
    if (this.perDay.size > 10_000) this.perDay.delete(this.perDay.keys().next().value!);
    return true;
  }

  private idleGpuHours(h: Holding, now: number): number {
    return Math.round(((h.share * (now - h.idleSince)) / 3_600_000) * 10_000) / 10_000;
  }

  private base(h: Holding, kind: NudgeRecord['kind'], now: number): NudgeRecord {
    return {
      id: `${now.toString(36)}-${randomBytes(4).toString('hex')}`,
      kind,
      at: now,
      node: h.node,
      gpuUuid: h.gpuUuid,
      gpuIndex: h.gpuIndex,
      user: h.user,
      project: h.project,
      idleSince: h.idleSince,
      process: h.process,
      idleGpuHours: this.idleGpuHours(h, now),
      until: null,
      to: null,
      email: null,
      webhooks: null,
      idleMsAfterNudge: null,
    };
  }

  private send(h: Holding, cfg: ProjectsConfig, audience: 'user' | 'lead', now: number): void {
    const s = cfg.nudge;
    const project = h.project ? cfg.projects.get(h.project) : undefined;
    const who = audience === 'user' ? h.user : (project?.lead ?? null);
    const contact = who ? contactOf(cfg, who) : null;
    const lang: Language = contact?.language ?? cfg.mail.defaultLanguage;
    const base = this.opts.baseUrl().replace(/\/+$/, '');
    const link =
      audience === 'user'
        ? this.opts.links.issue({
            node: h.node,
            gpuUuid: h.gpuUuid,
            user: h.user,
            exp: now + s.linkValidForMs,
          })
        : null;
    const facts: NudgeFacts = {
      audience,
      node: h.node,
      gpuIndex: h.gpuIndex,
      user: h.user,
      project: h.project,
      projectName: project ? (project.name[lang] ?? project.name.en ?? project.id) : null,
      process: h.process,
      idleSince: h.idleSince,
      now,
      idleGpuHours: this.idleGpuHours(h, now),
      projectIdleGpuHoursToday: h.project ? (this.opts.projectIdleToday?.(h.project) ?? null) : null,
      share: this.shareOf(h.project),
      timeZone: s.timeZone,
      myWorkUrl: `${base}/me?user=${encodeURIComponent(h.user)}`,
      snoozeUrl: link ? `${base}/nudge/snooze?t=${link.token}` : null,
      snoozeMs: s.snoozeMs,
      linkValidForMs: s.linkValidForMs,
      nudgedAt: h.userAt,
    };
    const msg = renderNudge(facts, lang);
    const record: NudgeRecord = {
      ...this.base(h, audience === 'user' ? 'nudge' : 'escalation', now),
      to: audience,
      email: null,
      webhooks: 0,
    };
    let emailResult: Promise<NudgeEmail>;
    if (!contact?.email) {
      emailResult = Promise.resolve('no-address');
    } else if (!this.opts.mailer.configured) {
      emailResult = Promise.resolve('not-configured');
    } else {
      emailResult = this.opts.mailer.send({
        to: contact.email,
        subject: msg.subject,
        text: msg.text,
        html: msg.html,
        headers: { 'Content-Language': lang },
      });
    }
    if (s.webhooks && this.opts.webhooks && this.opts.webhooks.size > 0) {
      record.webhooks = this.opts.webhooks.post({
        kind: record.kind,
        text: msg.chat,
        mention: contact?.slack ?? null,
        record,
      });
    }
    void emailResult.then((result) => {
      record.email = result;
      this.opts.observer?.email?.(result);
      this.push(record);
    });
  }

  private shareOf(project: string | null): NudgeFacts['share'] {
    const s = project ? this.opts.projectShare?.(project) : null;
    if (!s || s.agreedGpuHours === null || s.agreedGpuHours <= 0) return null;
    return { agreedGpuHours: s.agreedGpuHours, usedGpuHours: s.usedGpuHours, usedPercent: s.usedPercent };
  }

  private sendOps(h: Holding, cfg: ProjectsConfig, now: number): void {
    const s = cfg.nudge;
    const hours = this.idleGpuHours(h, now);
    const alert: Alert = {
      id: `gpu_idle_held_nudge:${h.node}:${h.gpuUuid}:${h.user}:${h.idleSince}`,
      rule: 'gpu_idle_held_nudge',
      severity: 'warning',
      state: 'firing',
      node: h.node,
      gpuUuid: h.gpuUuid,
      gpuIndex: h.gpuIndex,
      project: h.project,
      message: `GPU ${h.gpuIndex ?? '?'} held idle by ${h.user} (${h.process ?? 'unknown process'}) since ${formatTime(h.idleSince, 'en', s.timeZone)}; owner${h.project && cfg.projects.get(h.project)?.lead ? ' and project lead' : ''} told, still idle (${hours.toFixed(2)} GPU-hours)`,
      value: Math.round(((now - h.idleSince) / 3_600_000) * 100) / 100,
      threshold: Math.round(((s.afterMs + s.opsAfterMs) / 3_600_000) * 100) / 100,
      startedAt: h.idleSince,
      endedAt: null,
    };
    const n = this.opts.ops?.(alert) ?? 0;
    this.push({ ...this.base(h, 'ops', now), to: 'ops', webhooks: n });
  }

  private resolve(h: Holding, now: number): void {
    if (h.userAt === null) return;
    this.push({ ...this.base(h, 'resolved', now), idleMsAfterNudge: now - h.userAt });
  }

  /** "I'm still using it": checks the link and snoozes. */
  snooze(token: string): SnoozeOutcome {
    const now = this.opts.clock.now();
    const check = this.opts.links.verify(token, now);
    if (!check.ok) return { ok: false, reason: check.reason, user: check.claim?.user ?? null };
    const c = check.claim;
    if (this.usedLinks.has(c.id)) return { ok: false, reason: 'used', user: c.user };
    this.usedLinks.set(c.id, c.exp);
    const snoozeMs = this.opts.projects().nudge.snoozeMs;
    const key = keyOf(c.node, c.gpuUuid, c.user);
    const until = now + snoozeMs;
    this.snoozes.set(key, { node: c.node, gpuUuid: c.gpuUuid, user: c.user, until });
    const h = this.holdings.get(key);
    const ref =
      h ??
      ({
        key,
        node: c.node,
        gpuUuid: c.gpuUuid,
        gpuIndex: this.latest((r) => keyOf(r.node, r.gpuUuid, r.user) === key)?.gpuIndex ?? null,
        user: c.user,
        project: this.latest((r) => keyOf(r.node, r.gpuUuid, r.user) === key)?.project ?? null,
        process: null,
        share: 0,
        idleSince: now,
      } as Holding);
    const record: NudgeRecord = { ...this.base(ref, 'snooze', now), until, linkId: c.id } as NudgeRecord;
    this.push(record);
    this.log?.info({ user: c.user, node: c.node, gpu: record.gpuIndex, until }, 'nudge snoozed by its link');
    return { ok: true, record };
  }

  /** What a link would do now (without using it): for the page a click opens. */
  checkLink(token: string): {
    state: 'ok' | 'invalid' | 'expired' | 'used';
    user: string | null;
    node: string | null;
    gpuIndex: number | null;
  } {
    const check = this.opts.links.verify(token, this.opts.clock.now());
    const c = check.claim;
    const gpuIndex = c
      ? (this.holdings.get(keyOf(c.node, c.gpuUuid, c.user))?.gpuIndex ??
        this.latest((r) => r.node === c.node && r.gpuUuid === c.gpuUuid)?.gpuIndex ??
        null)
      : null;
    const state = !check.ok ? check.reason : this.usedLinks.has(check.claim.id) ? 'used' : 'ok';
    return { state, user: c?.user ?? null, node: c?.node ?? null, gpuIndex };
  }

  /** Records read back from storage at start (oldest first): used links, snoozes, caps, schedules. */
  restore(records: readonly (NudgeRecord & { linkId?: string })[]): void {
    const now = this.opts.clock.now();
    const s = this.opts.projects().nudge;
    const have = new Set(this.records.map((r) => r.id));
    for (const r of [...records].sort((a, b) => a.at - b.at)) {
      if (have.has(r.id)) continue;
      this.records.push(r);
      if (r.kind === 'snooze') {
        if (r.linkId) this.usedLinks.set(r.linkId, r.at + s.linkValidForMs);
        if (r.until !== null && r.until > now)
          this.snoozes.set(keyOf(r.node, r.gpuUuid, r.user), {
            node: r.node,
            gpuUuid: r.gpuUuid,
            user: r.user,
            until: r.until,
          });
      }
      const key = keyOf(r.node, r.gpuUuid, r.user);
      if (r.kind === 'nudge') this.restored.set(key, { nudge: r, lead: false, ops: false });
      const prev = this.restored.get(key);
      if (prev && r.at >= prev.nudge.at && r.kind === 'escalation') prev.lead = true;
      if (prev && r.at >= prev.nudge.at && r.kind === 'ops') prev.ops = true;
      if (prev && r.at >= prev.nudge.at && r.kind === 'resolved') this.restored.delete(key);
      if (r.kind === 'nudge') {
        const { day } = localClock(r.at, s.timeZone);
        if (day === localClock(now, s.timeZone).day) {
          const c = this.perDay.get(r.user);
          this.perDay.set(r.user, { day, n: (c && c.day === day ? c.n : 0) + 1 });
        }
      }
    }
    this.records.sort((a, b) => a.at - b.at);
    if (this.records.length > this.maxRecords) this.records.splice(0, this.records.length - this.maxRecords);
  }

  private push(r: NudgeRecord): void {
    this.records.push(r);
    if (this.records.length > this.maxRecords) this.records.splice(0, this.records.length - this.maxRecords);
    this.opts.observer?.recorded?.(r.kind);
    try {
      this.opts.record?.(r);
    } catch (err) {
      this.log?.error({ err }, 'nudge record could not be stored');
    }
  }

  private latest(pred: (r: NudgeRecord) => boolean): NudgeRecord | null {
    for (let i = this.records.length - 1; i >= 0; i--) if (pred(this.records[i]!)) return this.records[i]!;
    return null;
  }

  /** Newest first, filtered. */
  list(
    filter: { node?: string; gpu?: string; user?: string; project?: string; limit?: number } = {},
  ): NudgesList {
    const match = (x: {
      node: string;
      gpuUuid: string;
      user: string;
      gpuIndex?: number | null;
      project?: string | null;
    }) =>
      (!filter.node || x.node === filter.node) &&
      (!filter.project || x.project === filter.project) &&
      (!filter.gpu || x.gpuUuid === filter.gpu || String(x.gpuIndex ?? '') === filter.gpu) &&
      (!filter.user || x.user === filter.user);
    const limit = filter.limit ?? 200;
    const nudges: NudgeRecord[] = [];
    for (let i = this.records.length - 1; i >= 0 && nudges.length < limit; i--) {
      const r = this.records[i]!;
      if (match(r)) {
        const { linkId: _l, ...pub } = r as NudgeRecord & { linkId?: string };
        nudges.push(pub);
      }
    }
    const now = this.opts.clock.now();
    const snoozes = [...this.snoozes.values()].filter((sn) => sn.until > now && match(sn));
    return {
      serverTime: now,
      email: this.opts.mailer.configured ? 'configured' : 'not-configured',
      nudges,
      snoozes,
    };
  }

  /** Holdings being watched (tests, metrics). */
  get watching(): number {
    return this.holdings.size;
  }
}
