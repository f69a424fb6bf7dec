import { describe, expect, it } from 'vitest';
import { escapeHtml, formatAgo, formatKilowatts, formatMemoryMiB, formatPercent, MISSING } from './format.ts';

describe('formatAgo', () => {
  it.each([
    ['en', 0, 'now'],
    ['en', 999, 'now'],
    ['en', 1000, '1 second ago'],
    ['en', 5400, '5 seconds ago'],
    ['en', 3 * 60_000, '3 minutes ago'],
    ['en', 2 * 3_600_000, '2 hours ago'],
    ['en', 3 * 86_400_000, '3 days ago'],
    ['ko', 0, '지금'],
    ['ko', 5000, '5초 전'],
    ['ko', 3 * 60_000, '3분 전'],
    ['ko', 2 * 3_600_000, '2시간 전'],
    ['ko', 3 * 86_400_000, '3일 전'],
  ])('%s %d ms → %s', (locale, ms, expected) => {
    expect(formatAgo(locale, ms)).toBe(expected);
  });

  it('treats clock skew (negative age) as now', () => {
    expect(formatAgo('en', -3000)).toBe('now');
  });
});

describe('number formats', () => {
  it('formats percent from a 0–100 value and dashes unknowns', () => {
    expect(formatPercent('en', 53.4)).toBe('53%');
    expect(formatPercent('ko', 53.4)).toBe('53%');
    expect(formatPercent('en', null)).toBe(MISSING);
    expect(formatPercent('en', undefined)).toBe(MISSING);
  });

  it('formats power and memory', () => {
    expect(formatKilowatts('en', 1.234)).toBe('1.23 kW');
    expect(formatKilowatts('en', 12.34)).toBe('12.3 kW');
    expect(formatMemoryMiB('en', 1024, 81920)).toBe('1.0 / 80.0 GiB');
    expect(formatMemoryMiB('en', null, 81920)).toBe('— / 80.0 GiB');
  });
});

describe('escapeHtml', () => {
  it('escapes markup in field data', () => {
    expect(escapeHtml(`<img src=x onerror="alert('x')">&`)).toBe(
      '&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;',
    );
  });
});
