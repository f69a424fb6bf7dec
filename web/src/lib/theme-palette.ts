import type { GridPalette } from './gpu-grid-option.ts';

/** Canvas colours per theme; keep in step with the CSS variables in `styles/main.css`. */
export const GRID_PALETTES: Record<
  'dark' | 'light',
  GridPalette & { hatchBackground: string; hatchLine: string }
> = {
  dark: {
    text: '#f3f5f9',
    mutedText: '#aab4c4',
    offlineStroke: '#5d6b80',
    hot: '#ff7a1a',
    hotText: '#0a0c10',
    focus: '#ffd60a',
    tooltipBackground: '#1c2330',
    tooltipText: '#f3f5f9',
    tooltipBorder: '#344055',
    status: { online: '#3ddc84', stale: '#ffc933', offline: '#ff6b6b' },
    hatchBackground: '#55585e',
    hatchLine: '#7d828a',
  },
  light: {
    text: '#0b0f17',
    mutedText: '#4a5568',
    offlineStroke: '#8a96a8',
    hot: '#c2410c',
    hotText: '#ffffff',
    focus: '#0050d0',
    tooltipBackground: '#ffffff',
    tooltipText: '#0b0f17',
    tooltipBorder: '#b8c2d0',
    status: { online: '#067a3b', stale: '#8a5a00', offline: '#c01425' },
    hatchBackground: '#6b6e73',
    hatchLine: '#92969c',
  },
};
