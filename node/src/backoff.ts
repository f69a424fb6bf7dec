// The one retry backoff of gpupulse: exponential, capped, with ±25 % jitter. Used for the agent's
// reconnects, failover rounds, resends and nvidia-smi restarts, and the server's storage writes
// and e-mail retries — so "backoff" means the same everywhere.

export interface BackoffOptions {
  /** Delay of the first retry (attempt 0), before jitter. */
  initialMs: number;
  /** Cap: no delay is above it, jitter included. */
  maxMs: number;
  /** Random source in [0, 1) for the jitter (tests pass a fixed one). */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (0 = the first retry): `min(maxMs, initialMs × 2^attempt)`
 * times a random factor in [0.75, 1.25), capped at `maxMs`, at least 1 ms. The jitter keeps many
 * clients that failed together (a server restart) from retrying in the same instant, while every
 * delay stays within 25 % of the nominal one (unlike "full jitter", which can retry at once).
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { initialMs, maxMs } = options;
  const random = options.random ?? Math.random;
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.max(1, Math.min(maxMs, Math.round(base * (0.75 + random() * 0.5))));
}

/** Counts consecutive failures and hands out the delay for the next retry. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** The delay before the next retry (and one more failure counted). */
  next(): number {
    return backoffDelay(this.attempt++, this.options);
  }

  /** Failures since the last success. */
  get failures(): number {
    return this.attempt;
  }

  /** A success: the next failure starts from `initialMs` again. */
  reset(): void {
    this.attempt = 0;
  }
}
