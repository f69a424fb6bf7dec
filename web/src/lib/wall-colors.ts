import { utilizationColor } from './color-scale.ts';

/**
 * Colour lookup tables for the wall canvas: one precomputed `#rrggbb` string per bin, so an
 * update costs an array read, not a colour computation and a string allocation per tile.
 */

export type ColorMode = 'utilization' | 'temperature';

/** Bins 0…100. */
export const UTILIZATION_LUT: readonly string[] = Array.from({ length: 101 }, (_, i) => utilizationColor(i));

/** Temperature scale range (°C): bin 0 = ≤ 25 °C, bin 100 = ≥ 95 °C. */
export const TEMP_MIN_C = 25;
export const TEMP_MAX_C = 95;

/**
 * ColorBrewer RdYlBu reversed (colour-blind safe): cool blue → pale yellow → hot red.
 * Distinct from viridis, so the two modes are never confused.
 */
const RDYLBU: readonly (readonly [number, number, number])[] = [
  [49, 54, 149],
  [69, 117, 180],
  [116, 173, 209],
  [171, 217, 233],
  [224, 243, 248],
  [254, 224, 144],
  [253, 174, 97],
  [244, 109, 67],
  [215, 48, 39],
  [165, 0, 38],
];

const hex = (n: number): string => Math.round(n).toString(16).padStart(2, '0');

function rampColor(stops: readonly (readonly [number, number, number])[], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return `#${hex(a[0] + (b[0] - a[0]) * f)}${hex(a[1] + (b[1] - a[1]) * f)}${hex(a[2] + (b[2] - a[2]) * f)}`;
}

export const TEMPERATURE_LUT: readonly string[] = Array.from({ length: 101 }, (_, i) =>
  rampColor(RDYLBU, i / 100),
);

/** CSS gradient of the temperature scale, for the legend. */
export function temperatureGradientCss(direction = 'to right'): string {
  const stops = RDYLBU.map((c, i) => `rgb(${c.join(',')}) ${(i / (RDYLBU.length - 1)) * 100}%`);
  return `linear-gradient(${direction}, ${stops.join(', ')})`;
}

/** Special codes above the 0…100 bins. */
/** A stale GPU or a GPU of a stale node (data not current): bright hatched, labelled STALE. */
export const FILL_STALE = 253;
export const FILL_UNKNOWN = 254;
export const FILL_OFFLINE = 255;

/** The LUT bin (0…100) for a value in the mode's unit; null → FILL_UNKNOWN. */
export function fillBin(mode: ColorMode, value: number | null): number {
  if (value === null || !Number.isFinite(value)) return FILL_UNKNOWN;
  const t = mode === 'utilization' ? value : ((value - TEMP_MIN_C) / (TEMP_MAX_C - TEMP_MIN_C)) * 100;
  return Math.min(100, Math.max(0, Math.round(t)));
}

/**
 * Colours for project bands: the Okabe–Ito set plus Tol's muted set (colour-blind safe, distinct
 * in order), used when the projects file gives a project no colour.
 */
export const PROJECT_FALLBACK_COLORS: readonly string[] = [
  '#e69f00',
  '#56b4e9',
  '#009e73',
  '#f0e442',
  '#0072b2',
  '#d55e00',
  '#cc79a7',
  '#88ccee',
  '#44aa99',
  '#ddcc77',
  '#aa4499',
  '#882255',
];

/** Band colour for usage no project rule matched. */
export const UNASSIGNED_COLOR = '#8b95a5';

/** A stable colour for a project id: its own colour if valid, else a fallback picked by a hash of the id. */
export function projectColor(id: string, own: string | null | undefined): string {
  if (own && /^#[0-9a-f]{6}$/i.test(own)) return own;
  if (id === 'unassigned') return UNASSIGNED_COLOR;
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return PROJECT_FALLBACK_COLORS[h % PROJECT_FALLBACK_COLORS.length]!;
}
