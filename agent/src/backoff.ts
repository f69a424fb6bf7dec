/** Exponential backoff with full-range jitter: attempt 0 → ~initial, capped at max. */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  // ±25 % jitter, never above max.
  return Math.max(1, Math.min(maxMs, Math.round(base * (0.75 + random() * 0.5))));
}
