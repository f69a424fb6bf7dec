export interface Throttled {
  /** Ask for a run: now if the last one is at least `intervalMs` ago, else once at the end of the interval. */
  request(): void;
  cancel(): void;
}

export interface ThrottleOptions {
  intervalMs: number;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** Leading + trailing throttle: at most one run per interval, and the last request always runs. */
export function createThrottle(fn: () => void, options: ThrottleOptions): Throttled {
  const now = options.now ?? Date.now;
  const setTimer = options.setTimer ?? ((f: () => void, ms: number) => setTimeout(f, ms));
  const clearTimer = options.clearTimer ?? ((h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let last = Number.NEGATIVE_INFINITY;
  let timer: unknown = null;

  const run = () => {
    timer = null;
    last = now();
    fn();
  };

  return {
    request() {
      if (timer !== null) return;
      const wait = last + options.intervalMs - now();
      if (wait <= 0) run();
      else timer = setTimer(run, wait);
    },
    cancel() {
      if (timer !== null) clearTimer(timer);
      timer = null;
    },
  };
}
