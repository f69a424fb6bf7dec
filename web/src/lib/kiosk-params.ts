import { parseFlag } from './privacy.ts';
import { parseRotateSeconds } from './rotation.ts';
import type { ColorMode } from './wall-colors.ts';

/** What the wall display's URL asks for: `?kiosk=1&rotate=30&privacy=1&color=temperature&token=…`. */
export interface KioskParams {
  kiosk: boolean;
  rotateSeconds: number | null;
  /** undefined: not in the URL (use the stored choice; kiosk defaults to on). */
  privacy: boolean | undefined;
  colorMode: ColorMode | undefined;
  /** Read-only display token for the socket handshake (never prompted for). */
  token: string | null;
}

export function parseKioskParams(search: string): KioskParams {
  const q = new URLSearchParams(search);
  const color = q.get('color');
  const token = q.get('token');
  return {
    kiosk: parseFlag(q.get('kiosk')) === true,
    rotateSeconds: parseRotateSeconds(q.get('rotate')),
    privacy: parseFlag(q.get('privacy')),
    colorMode:
      color === 'temperature' || color === 'temp'
        ? 'temperature'
        : color === 'utilization' || color === 'util'
          ? 'utilization'
          : undefined,
    token: token && token.length <= 512 ? token : null,
  };
}
