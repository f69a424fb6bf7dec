/**
 * Sequential, colour-blind-safe scale for utilization: viridis (matplotlib), sampled at
 * 0, 0.125 … 1 and linearly interpolated. Dark purple = idle, yellow = saturated.
 */
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Colour for unknown utilization (drawn hatched, with "?"). */
export const UNKNOWN_COLOR = '#6b6b6b';

const hex = (n: number): string => Math.round(n).toString(16).padStart(2, '0');

/** Viridis colour (`#rrggbb`) for a utilization in percent; null (unknown) gives `UNKNOWN_COLOR`. */
export function utilizationColor(percent: number | null): string {
  if (percent === null || !Number.isFinite(percent)) return UNKNOWN_COLOR;
  const t = Math.min(1, Math.max(0, percent / 100)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t));
  const f = t - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return `#${hex(a[0] + (b[0] - a[0]) * f)}${hex(a[1] + (b[1] - a[1]) * f)}${hex(a[2] + (b[2] - a[2]) * f)}`;
}

/** Black or white, whichever reads better on the given `#rrggbb` background (WCAG relative luminance). */
export function textColorOn(background: string): '#000000' | '#ffffff' {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(background);
  if (!m) return '#ffffff';
  const lin = (h: string) => {
    const c = Number.parseInt(h, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const l = 0.2126 * lin(m[1]!) + 0.7152 * lin(m[2]!) + 0.0722 * lin(m[3]!);
  // Contrast with black: (l + 0.05) / 0.05; with white: 1.05 / (l + 0.05).
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? '#000000' : '#ffffff';
}

/** CSS gradient of the scale, for legends. */
export function scaleGradientCss(direction = 'to right'): string {
  const stops = VIRIDIS.map((c, i) => `rgb(${c.join(',')}) ${(i / (VIRIDIS.length - 1)) * 100}%`);
  return `linear-gradient(${direction}, ${stops.join(', ')})`;
}
