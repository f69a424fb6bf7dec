import { describe, expect, it } from 'vitest';
import { formatAmount, formatDate, formatDay } from './history-format.ts';

describe('history formatting', () => {
  it('gives small amounts the digits they need', () => {
    expect(formatAmount('en', 0)).toBe('0');
    expect(formatAmount('en', 0.04234)).toBe('0.042');
    expect(formatAmount('en', 3.54)).toBe('3.5');
    expect(formatAmount('en', 1234.4)).toBe('1,234');
    expect(formatAmount('ko', 1234.4)).toBe('1,234');
  });

  it('formats dates by locale', () => {
    const t = Date.UTC(2026, 4, 3, 12);
    expect(formatDay('en', t)).toBe('May 3');
    expect(formatDay('ko', t)).toBe('5월 3일');
    expect(formatDate('ko', t)).toBe('2026년 5월 3일');
  });
});
