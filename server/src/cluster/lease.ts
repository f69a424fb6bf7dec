import type { Logger } from 'pino';
import type { RedisClient } from './redis.ts';

/**
 * Who does singleton work (usage points, rollups, alert notifications, nudges, monthly reports).
 * One process holds it at a time; `token` is a fencing token that grows with every change of
 * holder (a side effect can carry it so that a receiver refuses a deposed holder's late writes).
 */
export interface SingletonLease {
  /** True while this process holds the lease (checked before each side effect). */
  held(): boolean;
  /** Fencing token of the current holding; null while not held. */
  token(): number | null;
  /** Called with `true` when this process takes the lease and `false` when it loses it. */
  onChange(fn: (held: boolean) => void): void;
  close(): Promise<void>;
}

/** The single-process lease: always held, token 1. */
export class LocalLease implements SingletonLease {
  held(): boolean {
    return true;
  }
  token(): number {
    return 1;
  }
  onChange(): void {}
  async close(): Promise<void> {}
}

export interface RedisLeaseOptions {
  redis: RedisClient;
  /** Lease name (key `gpupulse:lease:<name>`). */
  name: string;
  /** This process (stored as the holder, for logs). */
  owner: string;
  /** Lease time in Redis (default 5 s): a dead holder's lease runs out after this. */
  ttlMs?: number;
  /** How often the holder renews and others try to take it (default 1.5 s). */
  renewMs?: number;
  /**
   * The holder stops acting this long before the lease could run out in Redis (default 1 s):
   * a holder that cannot renew (Redis unreachable, event loop stalled) gives up before anyone
   * else can take over.
   */
  safetyMs?: number;
  logger?: Logger;
  /** Local clock (tests). */
  now?: () => number;
}

// Take: free key → new fencing token from the counter, then SET with the lease time.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token`;
// Renew only our own holding (same owner and token).
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * A lease in Redis: `SET NX PX` semantics (done in one Lua script with a fencing counter),
 * renewed every `renewMs`, taken over within `ttlMs + renewMs` when its holder dies. The holder
 * believes it holds the lease only until `renewedAt + ttlMs - safetyMs` by its own clock, so two
 * processes never act at once as long as clocks run at the same rate (not: agree).
 */
export class RedisLease implements SingletonLease {
  private readonly key: string;
  private readonly fenceKey: string;
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly safetyMs: number;
  private readonly now: () => number;
  private readonly listeners: Array<(held: boolean) => void> = [];
  private current: { token: number; value: string; validUntil: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: RedisLeaseOptions) {
    this.key = `gpupulse:lease:${opts.name}`;
    this.fenceKey = `gpupulse:lease:${opts.name}:fence`;
    this.ttlMs = opts.ttlMs ?? 5000;
    this.renewMs = opts.renewMs ?? 1500;
    this.safetyMs = opts.safetyMs ?? 1000;
    this.now = opts.now ?? Date.now;
    if (this.renewMs * 2 >= this.ttlMs - this.safetyMs)
      throw new Error('lease: renewMs must be well below ttlMs - safetyMs (two renewals fit)');
  }

  /** First attempt now, then every `renewMs`. */
  async start(): Promise<void> {
    await this.step();
    this.timer = setInterval(() => void this.step(), this.renewMs);
    this.timer.unref();
  }

  held(): boolean {
    const c = this.current;
    if (c === null) return false;
    if (this.now() < c.validUntil) return true;
    this.lose('not renewed in time');
    return false;
  }

  token(): number | null {
    return this.held() ? this.current!.token : null;
  }

  onChange(fn: (held: boolean) => void): void {
    this.listeners.push(fn);
  }

  /** One renewal or acquisition attempt (the timer calls it; tests may too). */
  step(): Promise<void> {
    this.running ??= this.attempt().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async attempt(): Promise<void> {
    if (this.closed) return;
    const started = this.now();
    try {
      if (this.current) {
        const ok = await this.opts.redis.eval(RENEW, {
          keys: [this.key],
          arguments: [this.current.value, String(this.ttlMs)],
        });
        if (ok === 1 && this.current) this.current.validUntil = started + this.ttlMs - this.safetyMs;
        else this.lose('taken by another process or expired');
      } else {
        const token = Number(
          await this.opts.redis.eval(ACQUIRE, {
            keys: [this.key, this.fenceKey],
            arguments: [this.opts.owner, String(this.ttlMs)],
          }),
        );
        if (token > 0 && !this.closed) {
          this.current = {
            token,
            value: `${this.opts.owner}:${token}`,
            validUntil: started + this.ttlMs - this.safetyMs,
          };
          this.opts.logger?.info(
            { lease: this.opts.name, token },
            'lease taken: this process does the singleton work',
          );
          this.emit(true);
        }
      }
    } catch (err) {
      // Unreachable Redis: keep acting until validUntil, then `held()` gives up on its own.
      this.opts.logger?.warn(
        { lease: this.opts.name, err: (err as Error).message },
        'lease: Redis call failed',
      );
    }
  }

  private lose(why: string): void {
    if (!this.current) return;
    this.opts.logger?.warn({ lease: this.opts.name, token: this.current.token, why }, 'lease lost');
    this.current = null;
    this.emit(false);
  }

  private emit(held: boolean): void {
    for (const fn of this.listeners) {
      try {
        fn(held);
      } catch (err) {
        this.opts.logger?.error({ err }, 'lease listener failed');
      }
    }
  }

  /** Stops renewing and hands the lease back (another process takes it at its next attempt). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    const c = this.current;
    this.current = null;
    if (c) {
      try {
        await this.opts.redis.eval(RELEASE, { keys: [this.key], arguments: [c.value] });
      } catch {
        // It runs out on its own.
      }
      this.emit(false);
    }
  }
}
