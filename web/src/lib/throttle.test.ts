import { describe, expect, it } from 'vitest';
import { createThrottle } from './throttle.ts';

function fakeClock() {
  let t = 0;
  const timers: { at: number; fn: () => void }[] = [];
  return {
    now: () => t,
    setTimer: (fn: () => void, ms: number) => {
      const timer = { at: t + ms, fn };
      timers.push(timer);
      return timer;
    },
    clearTimer: (h: unknown) => {
      const i = timers.indexOf(h as (typeof timers)[number]);
      if (i >= 0) timers.splice(i, 1);
    },
    advance(ms: number) {
      t += ms;
      for (const timer of timers.filter((x) => x.at <= t)) {
        timers.splice(timers.indexOf(timer), 1);
        timer.fn();
      }
    },
  };
}

describe('createThrottle', () => {
  it('runs at once, then at most once per interval, always running the last request', () => {
    const clock = fakeClock();
    let runs = 0;
    const th = createThrottle(() => runs++, { intervalMs: 1000, ...clock });
    th.request();
    expect(runs).toBe(1);
    clock.advance(200);
    th.request();
    th.request();
    expect(runs).toBe(1);
    clock.advance(799);
    expect(runs).toBe(1);
    clock.advance(1);
    expect(runs).toBe(2);
    clock.advance(5000);
    th.request();
    expect(runs).toBe(3);
  });

  it('cancel drops a pending run', () => {
    const clock = fakeClock();
    let runs = 0;
    const th = createThrottle(() => runs++, { intervalMs: 1000, ...clock });
    th.request();
    th.request();
    th.cancel();
    clock.advance(2000);
    expect(runs).toBe(1);
  });
});
