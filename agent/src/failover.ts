// The agent's servers in failover order (`--server URL[,URL…]`) and the ONE reconnect schedule of
// the agent (also with a single server): when the current server is unreachable the next one is
// tried after a short jittered hop (0…initialMs, so that many agents failing over together do not
// reach the next server in the same instant); once every server failed in a round, the next round
// starts after one capped backoff (initialMs · 2^(round−1), ±25 % jitter, never above maxMs). Delays
// never stack: after a server comes back it is tried within one backoff plus the quick hops to it.
import { backoffDelay } from './backoff.ts';

export interface FailoverOptions {
  /** Delay scale: a hop within a round waits a random 0…initialMs; the first failed round waits initialMs ±25 %. */
  initialMs: number;
  /** Cap of every delay (the jitter included). */
  maxMs: number;
  random?: () => number;
}

/**
 * Why the last attempt on the current server ended:
 * - `unreachable`: no connection (refused, reset, timed out) → the next server in order;
 * - `refused`: the server answered with a refusal (a code such as UNAUTHORIZED) → the same server again;
 * - `lost`: an established connection dropped → the same server again (it may be restarting).
 */
export type AttemptEnd = 'unreachable' | 'refused' | 'lost';

export class FailoverList {
  private index = 0;
  /** Servers found unreachable in the current round. */
  private tried = 0;
  /** Failed rounds since the last successful connection (a refusal counts as one). */
  private rounds = 0;
  private readonly random: () => number;

  constructor(
    readonly urls: readonly string[],
    private readonly opts: FailoverOptions,
  ) {
    if (urls.length === 0) throw new Error('FailoverList needs at least one server URL');
    this.random = opts.random ?? Math.random;
  }

  get size(): number {
    return this.urls.length;
  }

  /** The server to connect to now. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /** Failed rounds since the last successful connection (the backoff's attempt number + 1). */
  get failedRounds(): number {
    return this.rounds;
  }

  /**
   * The last attempt on the current server ended (see {@link AttemptEnd}): the server to connect to
   * next (in order, after the last: the first again) and how long to wait before that. This is the
   * agent's only reconnect delay.
   */
  next(end: AttemptEnd = 'unreachable'): { url: string; delayMs: number } {
    const { initialMs, maxMs } = this.opts;
    if (end === 'lost') {
      // The start of an outage (counters were reset on connect): the same server after initialMs ±25 %.
      return { url: this.current, delayMs: backoffDelay(this.rounds, initialMs, maxMs, this.random) };
    }
    if (end === 'unreachable' && this.urls.length > 1) {
      this.index = (this.index + 1) % this.urls.length;
      this.tried++;
      if (this.tried < this.urls.length) {
        // Within a round: on to the next server quickly (jittered, never a backoff).
        return { url: this.current, delayMs: Math.round(this.random() * Math.min(initialMs, maxMs)) };
      }
    }
    // A full round failed (every server unreachable, a single server unreachable, or a refusal).
    this.tried = 0;
    this.rounds++;
    return { url: this.current, delayMs: backoffDelay(this.rounds - 1, initialMs, maxMs, this.random) };
  }

  /** Connected to the current server: the next outage starts a new schedule from here. */
  connected(): void {
    this.tried = 0;
    this.rounds = 0;
  }
}

/** `http://a:8080, http://b:8080/` → trimmed, non-empty, without trailing slashes. */
export function splitServerList(value: string | readonly string[]): string[] {
  const parts = typeof value === 'string' ? value.split(',') : value.flatMap((v) => v.split(','));
  return parts.map((s) => s.trim().replace(/\/+$/, '')).filter((s) => s !== '');
}
