import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  it('doubles per attempt with ±25 % jitter, capped at max (jitter included)', () => {
    const opts = { initialMs: 1000, maxMs: 30_000 };
    expect(backoffDelay(0, { ...opts, random: () => 0 })).toBe(750);
    expect(backoffDelay(0, { ...opts, random: () => 0.5 })).toBe(1000);
    expect(backoffDelay(1, { ...opts, random: () => 0.999999 })).toBe(2500);
    expect(backoffDelay(3, { ...opts, random: () => 0.5 })).toBe(8000);
    expect(backoffDelay(10, { ...opts, random: () => 0 })).toBe(22_500);
    expect(backoffDelay(10, { ...opts, random: () => 0.999999 })).toBe(30_000);
    // huge and negative attempts stay finite and sane
    expect(backoffDelay(1e9, { ...opts, random: () => 0.5 })).toBe(30_000);
    expect(backoffDelay(-3, { ...opts, random: () => 0.5 })).toBe(1000);
    expect(backoffDelay(0, { initialMs: 0, maxMs: 10, random: () => 0 })).toBe(1);
  });

  it('spreads the delays of many clients over the jitter range', () => {
    const delays = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(2, { initialMs: 1000, maxMs: 60_000 });
      expect(d).toBeGreaterThanOrEqual(3000);
      expect(d).toBeLessThanOrEqual(5000);
      delays.add(Math.floor(d / 250));
    }
    expect(delays.size).toBeGreaterThan(4);
  });
});

describe('Backoff', () => {
  it('counts failures and starts over after a success', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    expect(b.failures).toBe(5);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(100);
  });
});
