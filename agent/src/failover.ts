// The agent's servers in failover order (`--server URL[,URL…]`): when the current one is
// unreachable the next one is tried, with jitter so that many agents failing over together do not
// reach the next server in the same instant, and with backoff once every server failed in a round.
import { backoffDelay } from './backoff.ts';

export interface FailoverOptions {
  /** Delay scale: the first hop waits a random 0…initialMs; each full failed round doubles it. */
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export class FailoverList {
  private index = 0;
  /** Hops since the last successful connection. */
  private hops = 0;
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

  /**
   * The current server is unreachable: move on to the next one in order (after the last: the
   * first again) and say how long to wait before connecting to it.
   */
  next(): { url: string; delayMs: number } {
    this.index = (this.index + 1) % this.urls.length;
    this.hops++;
    const round = Math.floor(this.hops / this.urls.length);
    const delayMs =
      round === 0
        ? Math.round(this.random() * this.opts.initialMs)
        : backoffDelay(round - 1, this.opts.initialMs, this.opts.maxMs, this.random);
    return { url: this.current, delayMs };
  }

  /** Connected to the current server: the next outage starts a new round from here. */
  connected(): void {
    this.hops = 0;
  }
}

/** `http://a:8080, http://b:8080/` → trimmed, non-empty, without trailing slashes. */
export function splitServerList(value: string | readonly string[]): string[] {
  const parts = typeof value === 'string' ? value.split(',') : value.flatMap((v) => v.split(','));
  return parts.map((s) => s.trim().replace(/\/+$/, '')).filter((s) => s !== '');
}
