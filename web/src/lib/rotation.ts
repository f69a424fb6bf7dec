/** Kiosk rotation through views (`?rotate=30`). */

/** The views a wall display rotates through, in order. `/trends` belongs to the trends view. */
export const ROTATION_PATHS: readonly string[] = ['/', '/projects', '/trends'];

export const MIN_ROTATE_SECONDS = 5;
export const MAX_ROTATE_SECONDS = 3600;

/** Seconds per view from `?rotate=`: null when absent, 0 or invalid; clamped to 5 s … 1 h. */
export function parseRotateSeconds(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value.trim() === '') return null;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) return null;
  return Math.min(MAX_ROTATE_SECONDS, Math.max(MIN_ROTATE_SECONDS, Math.round(n)));
}

/** The path after `current`; a path outside the rotation starts it from the beginning. */
export function nextRotationPath(current: string, paths: readonly string[] = ROTATION_PATHS): string {
  const i = paths.indexOf(current);
  return paths[(i + 1) % paths.length] ?? '/';
}

/** Delay until the next switch, given when the current view was shown (so rotations don't drift). */
export function msUntilNext(shownAt: number, now: number, seconds: number): number {
  return Math.max(0, shownAt + seconds * 1000 - now);
}
