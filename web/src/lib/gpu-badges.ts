import type { GpuView, NodeStatus } from '@gpupulse/protocol';
import { HOT_TEMPERATURE_CELSIUS } from './fleet-state.ts';

/**
 * Wall badges as a bitmask (one byte per tile in the renderer). Each has its own shape on the
 * canvas and its own symbol in text, so colour is never the only cue.
 */
export const BADGE = {
  /** ≥ 85 °C — triangle in the top-right corner, ▲ */
  hot: 1,
  /** Thermal or power-brake clock slowdown — triangle in the top-left corner, ◤ */
  throttle: 2,
  /** ECC / row-remap failure / XID / GPU error — a cross over the tile, ✖ */
  error: 4,
  /** Data not current (GPU or node stale) — hatched tile, ? */
  stale: 8,
  /** Node offline — dashed outline, empty tile, – */
  offline: 16,
  /** A process holds the GPU but it has been idle for the window — a hollow ring, ◯ */
  idleHeld: 32,
} as const;

export type BadgeName = keyof typeof BADGE;
export const BADGE_NAMES = Object.keys(BADGE) as BadgeName[];
export const BADGE_SYMBOL: Record<BadgeName, string> = {
  hot: '▲',
  throttle: '◤',
  error: '✖',
  stale: '?',
  offline: '–',
  idleHeld: '◯',
};

/** Clock event reasons that mean the GPU is being slowed down by heat or power brake. */
export const THROTTLE_REASONS: ReadonlySet<string> = new Set([
  'hw_slowdown',
  'sw_thermal_slowdown',
  'hw_thermal_slowdown',
  'hw_power_brake_slowdown',
]);

export function isThrottling(gpu: GpuView): boolean {
  const reasons = gpu.clocksEventReasons;
  if (!reasons) return false;
  for (const r of reasons) if (THROTTLE_REASONS.has(r)) return true;
  return false;
}

export function hasHardwareError(gpu: GpuView): boolean {
  return (
    gpu.state === 'error' ||
    (gpu.eccErrorsUncorrectedVolatile ?? 0) > 0 ||
    gpu.remappedRowsFailure === true ||
    gpu.retiredPagesPending === true
  );
}

/**
 * The badge bits of one GPU. `errorFromAlerts`: a firing XID/ECC alert names this GPU (the
 * fleet view carries no XID history; alerts do).
 */
export function gpuBadges(status: NodeStatus, gpu: GpuView, errorFromAlerts = false): number {
  if (status === 'offline') return BADGE.offline;
  let bits = 0;
  if (status === 'stale' || gpu.state === 'stale') bits |= BADGE.stale;
  if (errorFromAlerts || hasHardwareError(gpu)) bits |= BADGE.error;
  if (gpu.temperatureCelsius !== null && gpu.temperatureCelsius >= HOT_TEMPERATURE_CELSIUS) bits |= BADGE.hot;
  if (isThrottling(gpu)) bits |= BADGE.throttle;
  if (gpu.idleHeld === true) bits |= BADGE.idleHeld;
  return bits;
}

/** The names of the set bits, in a stable order. */
export function badgeNames(bits: number): BadgeName[] {
  return BADGE_NAMES.filter((n) => (bits & BADGE[n]) !== 0);
}

/** Counts per badge over a fleet (for the legend). */
export function countBadges(codes: Iterable<number>): Record<BadgeName, number> {
  const out = Object.fromEntries(BADGE_NAMES.map((n) => [n, 0])) as Record<BadgeName, number>;
  for (const bits of codes) for (const n of BADGE_NAMES) if (bits & BADGE[n]) out[n]++;
  return out;
}
