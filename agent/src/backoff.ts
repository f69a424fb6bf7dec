import { backoffDelay as sharedBackoffDelay } from '@gpupulse/node';

/**
 * The shared backoff of @gpupulse/node (exponential, capped, ±25 % jitter) in the positional form
 * the agent's modules call: attempt 0 → initialMs ±25 %, never above maxMs.
 */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return sharedBackoffDelay(attempt, { initialMs, maxMs, random });
}
