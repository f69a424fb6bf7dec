import { describe, expect, it } from 'vitest';
import { RingBuffer } from './ring-buffer.ts';

describe('RingBuffer', () => {
  it('keeps the newest `capacity` items, oldest first, and counts drops', () => {
    const r = new RingBuffer<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect(r.toArray()).toEqual([3, 4, 5]);
    expect(r.size).toBe(3);
    expect(r.dropped).toBe(2);
    expect(r.at(0)).toBe(3);
    expect(r.last()).toBe(5);
    expect(r.at(3)).toBeUndefined();
    r.clear();
    expect(r.toArray()).toEqual([]);
    expect(r.last()).toBeUndefined();
  });

  it('never grows past its capacity however much is pushed', () => {
    const r = new RingBuffer<object>(100);
    for (let i = 0; i < 100_000; i++) r.push({ i });
    expect(r.size).toBe(100);
    expect(r.toArray()[0]).toEqual({ i: 99_900 });
  });

  it('refuses a non-positive capacity', () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
  });
});
