import { onScopeDispose, shallowRef } from 'vue';

export interface UseNowOptions {
  /** Tick period in ms (default 1000). */
  intervalMs?: number;
}

/** `Date.now()` that ticks; the timer stops with the calling scope. */
export function useNow(options: UseNowOptions = {}) {
  const now = shallowRef(Date.now());
  const timer = setInterval(() => {
    now.value = Date.now();
  }, options.intervalMs ?? 1000);
  onScopeDispose(() => clearInterval(timer));
  return now;
}
