import { describe, expect, it } from 'vitest';
import { textColorOn, UNKNOWN_COLOR, utilizationColor } from './color-scale.ts';

describe('utilizationColor', () => {
  it('gives the unknown colour for null, never the 0 % colour', () => {
    expect(utilizationColor(null)).toBe(UNKNOWN_COLOR);
    expect(utilizationColor(null)).not.toBe(utilizationColor(0));
    expect(utilizationColor(Number.NaN)).toBe(UNKNOWN_COLOR);
  });

  it('runs from viridis purple to yellow and clamps', () => {
    expect(utilizationColor(0)).toBe('#440154');
    expect(utilizationColor(100)).toBe('#fde725');
    expect(utilizationColor(-5)).toBe('#440154');
    expect(utilizationColor(250)).toBe('#fde725');
    expect(utilizationColor(50)).toBe('#21908d');
  });

  it('is monotonic in lightness (sequential)', () => {
    const lum = (hex: string) => {
      const n = Number.parseInt(hex.slice(1), 16);
      return 0.2126 * (n >> 16) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255);
    };
    let prev = -1;
    for (let u = 0; u <= 100; u += 5) {
      const l = lum(utilizationColor(u));
      expect(l).toBeGreaterThan(prev);
      prev = l;
    }
  });
});

describe('textColorOn', () => {
  it('picks white on dark purple and black on yellow', () => {
    expect(textColorOn('#440154')).toBe('#ffffff');
    expect(textColorOn('#fde725')).toBe('#000000');
  });
});
