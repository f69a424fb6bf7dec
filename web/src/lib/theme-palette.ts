import type { WallPalette } from './wall-renderer.ts';

/** Canvas colours per theme; keep in step with the CSS variables in `styles/main.css`. */
export const WALL_PALETTES: Record<'dark' | 'light', WallPalette> = {
  dark: {
    surface: '#141922',
    text: '#f3f5f9',
    mutedText: '#aab4c4',
    offlineStroke: '#7d8aa0',
    hot: '#ff7a1a',
    badgeStroke: '#0a0c10',
    throttle: '#ffffff',
    error: '#ff3b5c',
    errorUnderlay: '#ffffff',
    ringLight: '#ffffff',
    ringDark: '#0a0c10',
    focus: '#ffd60a',
    hatchBackground: '#55585e',
    hatchLine: '#7d828a',
    status: { online: '#3ddc84', stale: '#ffc933', offline: '#ff6b6b' },
  },
  light: {
    surface: '#ffffff',
    text: '#0b0f17',
    mutedText: '#4a5568',
    offlineStroke: '#7a8698',
    hot: '#e05a00',
    badgeStroke: '#0b0f17',
    throttle: '#ffffff',
    error: '#c01425',
    errorUnderlay: '#ffffff',
    ringLight: '#ffffff',
    ringDark: '#0b0f17',
    focus: '#0050d0',
    hatchBackground: '#6b6e73',
    hatchLine: '#92969c',
    status: { online: '#067a3b', stale: '#8a5a00', offline: '#c01425' },
  },
};
