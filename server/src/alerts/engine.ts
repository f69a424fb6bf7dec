import type { Alert, AlertsList, GpuEvent, GpuView, NodeView } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { AlertRule } from './config.ts';

export interface AlertEngineOptions {
  rules: readonly AlertRule[];
  clock: Clock;
  /** Resolved alerts kept (newest first) for the API and dashboards (default 500). */
  maxResolved?: number;
  logger?: Logger;
}

export interface AlertFilter {
  state?: 'firing' | 'resolved' | 'all';
  node?: string;
  rule?: string;
}

/** The verdict of a rule on one subject at one instant. */
interface Condition {
  active: boolean;
  value: number | null;
  /** Built only when needed (an alert fires or is updated): most GPUs are quiet most of the time. */
  message: string | (() => string);
}

const messageOf = (c: Condition): string => (typeof c.message === 'function' ? c.message() : c.message);

interface Tracker {
  rule: AlertRule;
  node: string;
  gpu: GpuView | null;
  gpuUuid: string | null;
  /** When the condition started to hold (for-duration), null when it does not. */
  pendingSince: number | null;
  /** When the condition stopped holding while firing (clear-for duration). */
  clearSince: number | null;
  alert: Alert | null;
}

interface EventMark {
  rule: AlertRule;
  node: string;
  at: number;
  code: number | null;
  message: string;
  count: number;
  gpuUuid: string | null;
}

/** Per-GPU memory between ticks (ECC aggregate baseline). */
interface GpuMemo {
  eccAggregate: number | null;
  eccIncreasedAt: number | null;
  eccIncreasedBy: number;
}

const MAX_EVENT_KEYS = 50_000;

/**
 * Evaluates alert rules over the live fleet once per tick. One alert per (rule, node, GPU):
 * a condition must hold for the rule's `for` duration to fire (pending in between), and be gone
 * (below `threshold - hysteresis` for numeric rules) for `clearFor` to resolve. A resolved alert
 * is kept in a bounded list; a new occurrence gets a new id. Pure state: the caller supplies the
 * fleet view and the clock, and publishes the changes `evaluate()` returns.
 */
export class AlertEngine {
  private rules: AlertRule[];
  private readonly clock: Clock;
  private readonly maxResolved: number;
  private readonly logger: Logger | undefined;
  private readonly trackers = new Map<string, Tracker>();
  /** Trackers per node: quiet GPUs of untracked nodes (nearly all) skip every key and lookup. */
  private readonly trackedNodes = new Map<string, number>();
  private resolved: Alert[] = [];
  private readonly events = new Map<string, EventMark>();
  private readonly memo = new Map<string, GpuMemo>();
  private xidRules: AlertRule[];
  /**
   * The view each node had at the last evaluation: views are immutable and replaced when the node
   * changes, so the same object means the same inputs. Cleared when the rules change.
   */
  private readonly lastViews = new Map<string, NodeView>();
  /** Scratch: per GPU of the node being judged, 1 when its rule inputs changed. */
  private inputsChanged: number[] = [];
  /** Whether a `gpu_idle_held` rule is enabled (its condition moves with the clock). */
  private idleRule: boolean;

  constructor(opts: AlertEngineOptions) {
    this.rules = opts.rules.filter((r) => r.enabled);
    this.clock = opts.clock;
    this.maxResolved = opts.maxResolved ?? 500;
    this.logger = opts.logger;
    this.xidRules = this.rules.filter((r) => r.kind === 'xid');
    this.idleRule = this.rules.some((r) => r.kind === 'gpu_idle_held');
  }

  /**
   * Replaces the rules (an alerts file reload). Alerts of a rule that is kept go on under the new
   * settings; alerts of a removed or disabled rule resolve at the next `evaluate()`.
   */
  setRules(rules: readonly AlertRule[]): void {
    this.rules = rules.filter((r) => r.enabled);
    this.xidRules = this.rules.filter((r) => r.kind === 'xid');
    this.idleRule = this.rules.some((r) => r.kind === 'gpu_idle_held');
    this.lastViews.clear();
    const byId = new Map(this.rules.map((r) => [r.id, r]));
    for (const t of this.trackers.values()) t.rule = byId.get(t.rule.id) ?? t.rule;
    for (const [key, ev] of this.events) {
      const rule = byId.get(ev.rule.id);
      if (rule) ev.rule = rule;
      else this.events.delete(key);
    }
  }

  get ruleIds(): string[] {
    return this.rules.map((r) => r.id);
  }

  /** Driver events (XID …) from a node's samples; they are judged at the next `evaluate()`. */
  recordEvents(
    node: string,
    events: readonly GpuEvent[],
    gpus: readonly { uuid: string; pciBusId?: string | null }[] = [],
  ): void {
    if (this.xidRules.length === 0 || events.length === 0) return;
    const now = this.clock.now();
    for (const ev of events) {
      let uuid = ev.gpuUuid;
      if (!uuid && ev.pciBusId) {
        const bus = normaliseBusId(ev.pciBusId);
        uuid = gpus.find((g) => g.pciBusId && normaliseBusId(g.pciBusId) === bus)?.uuid ?? null;
      }
      for (const rule of this.xidRules) {
        if (rule.codes.length > 0 && (ev.code === null || !rule.codes.includes(ev.code))) continue;
        const key = keyOf(rule.id, node, uuid);
        const prev = this.events.get(key);
        if (!prev && this.events.size >= MAX_EVENT_KEYS) continue;
        this.events.set(key, {
          rule,
          node,
          at: now,
          code: ev.code,
          message: ev.message,
          count: (prev?.count ?? 0) + 1,
          gpuUuid: uuid,
        });
      }
    }
  }

  /**
   * Judges the rules against the fleet (every node, each call); returns the alerts that fired or
   * resolved now. Only what can have changed is judged: nodes with an alert pending or firing in
   * full; of the others, a node whose view is the one of the last call (and has no GPU held idle,
   * whose condition moves with the clock) is skipped, and of a changed node only the GPUs whose
   * rule inputs changed — quiet ones without allocating.
   */
  evaluate(nodes: readonly NodeView[]): Alert[] {
    const now = this.clock.now();
    const changed: Alert[] = [];
    const seen = new Set<string>();

    const judge = (
      rule: AlertRule,
      node: string,
      gpu: GpuView | null,
      cond: Condition,
      gpuUuid: string | null = gpu?.uuid ?? null,
    ) => {
      if (!cond.active && !this.trackedNodes.has(node)) return; // quiet and untracked
      const key = keyOf(rule.id, node, gpuUuid);
      let t = this.trackers.get(key);
      if (!t) {
        if (!cond.active) return; // quiet and untracked: nothing to remember

        t = {
          rule,
          node,
          gpu,
          gpuUuid,
          pendingSince: null,
          clearSince: null,
          alert: null,
        };
        this.track(key, t);
      }
      seen.add(key);
      t.gpu = gpu;
      this.step(t, cond, now, changed);
      if (!t.alert && t.pendingSince === null) this.untrack(key, t);
    };

    for (const n of nodes) {
      const tracked = this.trackedNodes.has(n.node);
      const prev = this.lastViews.get(n.node);
      this.lastViews.set(n.node, n);
      // Inputs unchanged since the last evaluation, nothing pending or firing, nothing timed:
      // every condition is as quiet as it was, so the node is skipped whole.
      if (!tracked && prev === n && !this.timed(n)) {
        continue;
      }
      const online = n.status === 'online';
      // Per GPU of an untracked node, once: did its rule inputs change since the last evaluation?
      const moved = this.inputsChanged;
      let changedGpus = 0;
      if (!tracked) {
        for (let i = 0; i < n.gpus.length; i++) {
          const g = n.gpus[i]!;
          const before = prev?.gpus[i];
          const differs = before === undefined || g.idleHeldSince != null || !sameInputs(before, g);
          moved[i] = differs ? 1 : 0;
          if (differs) changedGpus++;
        }
      }
      for (const rule of this.rules) {
        switch (rule.kind) {
          case 'node_offline':
            if (!tracked && n.status !== 'offline') break; // quiet and untracked
            judge(rule, n.node, null, {
              active: n.status === 'offline',
              value: n.lastSeen === null ? null : Math.round((now - n.lastSeen) / 1000),
              message: () =>
                `node ${n.node} is offline${n.lastSeen !== null ? ` (last sample ${Math.round((now - n.lastSeen) / 1000)} s ago)` : ''}`,
            });
            break;
          case 'gpu_stale': {
            if (!online) {
              this.keep(rule, n.node, seen);
              break;
            }
            const bad = n.gpuCollector === 'stale' || n.gpuCollector === 'error';
            if (tracked || bad) {
              judge(rule, n.node, null, {
                active: bad,
                value: null,
                message: () =>
                  `GPU collector on ${n.node} is ${n.gpuCollector}${n.gpuError ? `: ${n.gpuError}` : ''} (nvidia-smi not answering?)`,
              });
            }
            if (bad) {
              // The node-level alert covers its GPUs; keep their per-GPU alerts as they are.
              this.keep(rule, n.node, seen);
              break;
            }
            for (const g of n.gpus) {
              const stale = g.state === 'stale' || g.state === 'error';
              if (!tracked && !stale) continue;
              judge(rule, n.node, g, {
                active: stale,
                value: null,
                message: () => `${gpuName(n.node, g)} is ${g.state}${g.error ? `: ${g.error}` : ''}`,
              });
            }
            break;
          }
          case 'xid':
            break; // below, from recorded events
          default:
            if (!tracked && changedGpus === 0) break;
            if (!online) {
              // No fresh data: neither fire nor resolve (node_offline speaks for the node).
              this.keep(rule, n.node, seen);
              break;
            }
            for (let i = 0; i < n.gpus.length; i++) {
              const g = n.gpus[i]!;
              // Untracked (nearly every node): a GPU whose rule inputs did not change since the
              // last evaluation stays quiet; a changed one is judged without allocating unless
              // its condition holds.
              if (!tracked && (moved[i] === 0 || this.quiet(rule, n.node, g, now))) continue;
              const cond = this.gpuCondition(rule, n.node, g, now);
              // null: the value is unknown right now; a firing alert stays as it is.
              if (cond) judge(rule, n.node, g, cond);
              else if (tracked) seen.add(keyOf(rule.id, n.node, g.uuid));
            }
        }
      }
    }
    // XID / driver events: active while the last one is younger than the hold time.
    const byName = new Map(nodes.map((n) => [n.node, n]));
    for (const [key, ev] of this.events) {
      const { rule, node } = ev;
      const gpu = ev.gpuUuid ? (byName.get(node)?.gpus.find((g) => g.uuid === ev.gpuUuid) ?? null) : null;
      const active = now - ev.at < rule.holdMs;
      judge(
        rule,
        node,
        gpu,
        {
          active,
          value: ev.code,
          message: `${ev.code !== null ? `XID ${ev.code}` : 'driver error'} on ${gpu ? gpuName(node, gpu) : ev.gpuUuid ? `GPU ${ev.gpuUuid} on ${node}` : node}: ${ev.message}${ev.count > 1 ? ` (${ev.count} events)` : ''}`,
        },
        ev.gpuUuid,
      );
      if (!active) this.events.delete(key);
    }
    // Subjects that disappeared (node forgotten, GPU gone): resolve.
    for (const [key, t] of this.trackers) {
      if (seen.has(key)) continue;
      if (t.alert) {
        this.resolve(t, now, changed);
      }
      this.untrack(key, t);
    }
    // Forget the ECC baselines of GPUs on forgotten nodes (offline nodes keep theirs).
    for (const k of this.memo.keys()) {
      if (!byName.has(k.slice(0, k.lastIndexOf('|')))) this.memo.delete(k);
    }
    if (this.lastViews.size > byName.size) {
      for (const name of this.lastViews.keys()) if (!byName.has(name)) this.lastViews.delete(name);
    }
    return changed;
  }

  /** Firing alerts and the most recent resolved ones, filtered; newest first. */
  list(filter: AlertFilter = {}): AlertsList {
    const state = filter.state ?? 'all';
    const out: Alert[] = [];
    if (state !== 'resolved') {
      for (const t of this.trackers.values()) if (t.alert) out.push(t.alert);
      out.sort((a, b) => b.startedAt - a.startedAt);
    }
    if (state !== 'firing') out.push(...this.resolved);
    return {
      serverTime: this.clock.now(),
      alerts: out.filter(
        (a) => (!filter.node || a.node === filter.node) && (!filter.rule || a.rule === filter.rule),
      ),
    };
  }

  /** Firing alerts per rule id (every enabled rule present, 0 when quiet). */
  firingByRule(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rules) out[r.id] = 0;
    for (const t of this.trackers.values()) if (t.alert) out[t.rule.id] = (out[t.rule.id] ?? 0) + 1;
    return out;
  }

  // ---- internals ----

  private gpuCondition(rule: AlertRule, node: string, g: GpuView, now: number): Condition | null {
    const firing =
      this.trackedNodes.has(node) && this.trackers.get(keyOf(rule.id, node, g.uuid))?.alert != null;
    switch (rule.kind) {
      case 'gpu_temperature':
      case 'memory_temperature': {
        const v = rule.kind === 'gpu_temperature' ? g.temperatureCelsius : g.memoryTemperatureCelsius;
        if (v === null || v === undefined) return firing ? null : { active: false, value: null, message: '' };
        const limit = (rule.threshold ?? 0) - (firing ? rule.hysteresis : 0);
        const what = rule.kind === 'gpu_temperature' ? 'GPU temperature' : 'memory temperature';
        return {
          active: v >= limit,
          value: v,
          message: () =>
            `${what} of ${gpuName(node, g)} is ${v} °C (≥ ${rule.threshold} °C${rule.forMs ? ` for ${fmtDuration(rule.forMs)}` : ''})`,
        };
      }
      case 'clock_throttle': {
        const active = (g.clocksEventReasons ?? []).filter((r) => rule.reasons.includes(r));
        return {
          active: active.length > 0,
          value: g.clocksEventReasonsActive ?? null,
          message: () => `${gpuName(node, g)} is throttled: ${active.join(', ') || 'cleared'}`,
        };
      }
      case 'ecc_uncorrectable': {
        const key = `${node}|${g.uuid}`;
        let m = this.memo.get(key);
        if (!m) {
          m = { eccAggregate: null, eccIncreasedAt: null, eccIncreasedBy: 0 };
          this.memo.set(key, m);
        }
        const agg = g.eccErrorsUncorrectedAggregate;
        if (typeof agg === 'number') {
          if (m.eccAggregate !== null && agg > m.eccAggregate) {
            m.eccIncreasedAt = now;
            m.eccIncreasedBy += agg - m.eccAggregate;
          }
          m.eccAggregate = agg;
        }
        const vol = g.eccErrorsUncorrectedVolatile ?? 0;
        const recent = m.eccIncreasedAt !== null && now - m.eccIncreasedAt < rule.holdMs;
        if (!recent) m.eccIncreasedBy = 0;
        return {
          active: vol > 0 || recent,
          value: vol > 0 ? vol : recent ? m.eccIncreasedBy : 0,
          message: () =>
            vol > 0
              ? `${gpuName(node, g)} has ${vol} uncorrectable ECC error(s) since the driver loaded`
              : `${gpuName(node, g)}: uncorrectable ECC aggregate count rose by ${m.eccIncreasedBy} to ${agg}`,
        };
      }
      case 'remapped_rows': {
        const failure = g.remappedRowsFailure === true;
        const pending = g.remappedRowsPending === true;
        return {
          active: failure || pending,
          value: failure ? 2 : pending ? 1 : 0,
          message: failure
            ? `${gpuName(node, g)}: row remapping FAILED (the GPU needs service)`
            : `${gpuName(node, g)}: row remapping pending (reset the GPU to apply)`,
        };
      }
      case 'gpu_idle_held': {
        const since = g.idleHeldSince;
        const held = typeof since === 'number' ? (now - since) / 1000 : null;
        return {
          active: held !== null && held >= (rule.threshold ?? 3600),
          value: held === null ? null : Math.round(held),
          message: () =>
            `${gpuName(node, g)} held but idle for ${held === null ? '?' : fmtDuration(held * 1000)}${g.project ? ` by project ${g.project}` : ''}`,
        };
      }
      default:
        return null;
    }
  }

  /** True when a node's conditions can change with the clock alone (a GPU held idle). */
  private timed(n: NodeView): boolean {
    if (!this.idleRule) return false;
    for (const g of n.gpus) if (g.idleHeldSince != null) return true;
    return false;
  }

  /**
   * True when `rule` certainly does not hold for GPU `g` of an untracked node (the common case),
   * decided without allocating. Keeps the ECC baseline up to date as `gpuCondition` does.
   */
  private quiet(rule: AlertRule, node: string, g: GpuView, now: number): boolean {
    switch (rule.kind) {
      case 'gpu_temperature':
      case 'memory_temperature': {
        const v = rule.kind === 'gpu_temperature' ? g.temperatureCelsius : g.memoryTemperatureCelsius;
        return v === null || v === undefined || v < (rule.threshold ?? 0);
      }
      case 'clock_throttle': {
        const reasons = g.clocksEventReasons;
        if (!reasons) return true;
        for (const r of reasons) if (rule.reasons.includes(r)) return false;
        return true;
      }
      case 'ecc_uncorrectable': {
        if ((g.eccErrorsUncorrectedVolatile ?? 0) > 0) return false;
        const m = this.memo.get(`${node}|${g.uuid}`);
        const agg = g.eccErrorsUncorrectedAggregate;
        if (!m) return false; // first sight: gpuCondition sets the baseline
        if (typeof agg === 'number') {
          if (m.eccAggregate !== null && agg > m.eccAggregate) return false;
          m.eccAggregate = agg;
        }
        if (m.eccIncreasedAt !== null && now - m.eccIncreasedAt < rule.holdMs) return false;
        m.eccIncreasedBy = 0;
        return true;
      }
      case 'remapped_rows':
        return g.remappedRowsFailure !== true && g.remappedRowsPending !== true;
      case 'gpu_idle_held': {
        const since = g.idleHeldSince;
        return typeof since !== 'number' || (now - since) / 1000 < (rule.threshold ?? 3600);
      }
      default:
        return true;
    }
  }

  private track(key: string, t: Tracker): void {
    this.trackers.set(key, t);
    this.trackedNodes.set(t.node, (this.trackedNodes.get(t.node) ?? 0) + 1);
  }

  private untrack(key: string, t: Tracker): void {
    if (!this.trackers.delete(key)) return;
    const n = (this.trackedNodes.get(t.node) ?? 1) - 1;
    if (n > 0) this.trackedNodes.set(t.node, n);
    else this.trackedNodes.delete(t.node);
  }

  /** Marks the alerts of a rule on a node as seen (frozen: no fire, no resolve). */
  private keep(rule: AlertRule, node: string, seen: Set<string>): void {
    if (!this.trackedNodes.has(node)) return;
    const prefix = `${rule.id}|${node}|`;
    for (const k of this.trackers.keys()) if (k.startsWith(prefix)) seen.add(k);
  }

  private step(t: Tracker, cond: Condition, now: number, changed: Alert[]): void {
    if (cond.active) {
      t.clearSince = null;
      t.pendingSince ??= now;
      if (t.alert) {
        t.alert.value = cond.value;
        if (cond.value !== null && (t.alert.peak == null || cond.value > t.alert.peak))
          t.alert.peak = cond.value;
        t.alert.message = messageOf(cond);
        return;
      }
      if (now - t.pendingSince >= t.rule.forMs) {
        const g = t.gpu;
        t.alert = {
          id: `${t.rule.id}:${t.node}:${t.gpuUuid ?? '-'}:${t.pendingSince}`,
          rule: t.rule.id,
          severity: t.rule.severity,
          state: 'firing',
          node: t.node,
          gpuUuid: t.gpuUuid,
          gpuIndex: g && g.index >= 0 ? g.index : null,
          project: g?.project ?? null,
          message: messageOf(cond),
          value: cond.value,
          peak: cond.value,
          threshold: t.rule.threshold,
          startedAt: t.pendingSince,
          endedAt: null,
        };
        changed.push({ ...t.alert });
        this.logger?.warn({ alert: t.alert.id, message: t.alert.message }, 'alert firing');
      }
      return;
    }
    if (!t.alert) {
      t.pendingSince = null;
      return;
    }
    t.clearSince ??= now;
    if (now - t.clearSince >= t.rule.clearForMs) this.resolve(t, now, changed);
  }

  private resolve(t: Tracker, now: number, changed: Alert[]): void {
    if (!t.alert) return;
    const done: Alert = { ...t.alert, state: 'resolved', endedAt: now };
    t.alert = null;
    t.pendingSince = null;
    t.clearSince = null;
    this.resolved.unshift(done);
    if (this.resolved.length > this.maxResolved) this.resolved.length = this.maxResolved;
    changed.push(done);
    this.logger?.info({ alert: done.id }, 'alert resolved');
  }
}

/** Whether two views of the same GPU agree on everything a GPU rule reads. */
function sameInputs(a: GpuView, b: GpuView): boolean {
  return (
    a.uuid === b.uuid &&
    a.index === b.index &&
    a.state === b.state &&
    a.temperatureCelsius === b.temperatureCelsius &&
    a.memoryTemperatureCelsius === b.memoryTemperatureCelsius &&
    a.clocksEventReasonsActive === b.clocksEventReasonsActive &&
    sameList(a.clocksEventReasons, b.clocksEventReasons) &&
    a.eccErrorsUncorrectedVolatile === b.eccErrorsUncorrectedVolatile &&
    a.eccErrorsUncorrectedAggregate === b.eccErrorsUncorrectedAggregate &&
    a.remappedRowsFailure === b.remappedRowsFailure &&
    a.remappedRowsPending === b.remappedRowsPending &&
    a.idleHeldSince === b.idleHeldSince
  );
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function keyOf(rule: string, node: string, gpuUuid: string | null): string {
  return `${rule}|${node}|${gpuUuid ?? ''}`;
}

function gpuName(node: string, g: { index: number; uuid: string }): string {
  return g.index >= 0 ? `GPU ${g.index} on ${node}` : `GPU ${g.uuid} on ${node}`;
}

function normaliseBusId(id: string): string {
  // nvidia-smi: 00000000:3B:00.0; the kernel: 0000:3b:00.0
  const m = /([0-9a-f]{2}):([0-9a-f]{2})\.([0-9a-f])$/i.exec(id.trim());
  return m ? `${m[1]}:${m[2]}.${m[3]}`.toLowerCase() : id.toLowerCase();
}

function fmtDuration(ms: number): string {
  if (ms >= 3_600_000) return `${+(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${+(ms / 60_000).toFixed(1)} min`;
  return `${Math.round(ms / 1000)} s`;
}
