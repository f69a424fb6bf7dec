import type { Alert } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import type { AlertService } from '../alerts/service.ts';
import type { SingletonLease } from './lease.ts';
import type { RedisClient } from './redis.ts';

const KEY = 'gpupulse:alerts:notified';
/** Remembered subjects before resolved ones are pruned. */
const MAX_REMEMBERED = 10_000;

const subjectOf = (a: Alert): string => `${a.rule}\u0000${a.node}\u0000${a.gpuUuid ?? ''}`;

/**
 * Each alert notified once across the cluster. Every process evaluates the rules over the same
 * replicated fleet (so each serves `/api/v1/alerts` and dashboard snapshots, and a standby is
 * warm), but only the lease holder writes alert points, pushes changes and sends webhooks.
 *
 * The holder remembers in Redis (hash `gpupulse:alerts:notified`: subject → `firing` |
 * `resolved`) what it notified; a notification goes out only when the subject's state differs
 * from what was notified. On taking the lease a process loads that hash and notifies what
 * changed while nobody held it (an alert that fired, or resolved, during the takeover window),
 * and none of what its predecessor already sent (its own evaluation may lag by a tick).
 */
export class AlertsOnce {
  private notified = new Map<string, 'firing' | 'resolved'>();

  constructor(
    private readonly deps: {
      redis: RedisClient;
      lease: SingletonLease;
      alerts: () => AlertService;
      /** Alert points, dashboards (cluster-wide), as AlertService does for its changes. */
      write(alerts: Alert[]): void;
      publish(alerts: Alert[]): void;
      logger: Logger;
    },
  ) {}

  /** For `AlertService`'s `gate`: the alerts whose state was not notified yet (remembers them). */
  gate = (alerts: Alert[]): Alert[] => {
    const out: Alert[] = [];
    for (const a of alerts) {
      const s = subjectOf(a);
      if (this.notified.get(s) === a.state) continue;
      this.notified.set(s, a.state);
      out.push(a);
    }
    if (out.length > 0) this.remember(out);
    return out;
  };

  /** Called when this process takes the lease: loads what was notified, sends what was missed. */
  async takeover(): Promise<void> {
    const log = this.deps.logger;
    let stored: Record<string, string>;
    try {
      stored = await this.deps.redis.hGetAll(KEY);
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        'alerts: cannot read what was notified; notifying from now on',
      );
      stored = {};
    }
    this.notified = new Map(
      Object.entries(stored).filter(
        (e): e is [string, 'firing' | 'resolved'] => e[1] === 'firing' || e[1] === 'resolved',
      ),
    );
    if (!this.deps.lease.held()) return;
    const service = this.deps.alerts();
    const all = service.list({ state: 'all' }).alerts;
    const firing = new Set<string>();
    const missed: Alert[] = [];
    for (const a of all) {
      if (a.state !== 'firing') continue;
      firing.add(subjectOf(a));
      if (this.notified.get(subjectOf(a)) !== 'firing') missed.push(a);
    }
    for (const [s, state] of this.notified) {
      if (state !== 'firing' || firing.has(s)) continue;
      // Resolved while nobody held the lease: the newest resolved alert of that subject.
      const done = all.find((a) => a.state === 'resolved' && subjectOf(a) === s);
      if (done) missed.push(done);
    }
    const send = this.gate(missed);
    if (send.length === 0) return;
    log.info(
      { alerts: send.map((a) => `${a.id} ${a.state}`) },
      'alerts: notifying what changed during the lease takeover',
    );
    this.deps.write(send);
    this.deps.publish(send);
    service.webhooks.notify(send);
  }

  private remember(alerts: Alert[]): void {
    const r = this.deps.redis;
    const fields: Record<string, string> = {};
    for (const a of alerts) fields[subjectOf(a)] = a.state;
    void r.hSet(KEY, fields).catch((err: unknown) => {
      this.deps.logger.warn(
        { err: (err as Error).message },
        'alerts: cannot remember notifications in Redis',
      );
    });
    if (this.notified.size > MAX_REMEMBERED) {
      const drop = [...this.notified].filter(([, st]) => st === 'resolved').map(([s]) => s);
      for (const s of drop) this.notified.delete(s);
      if (drop.length > 0) void r.hDel(KEY, drop).catch(() => {});
    }
  }
}
