import { describe, expect, it } from 'vitest';
import { parseKioskParams } from './kiosk-params.ts';
import { parseFlag, visibleAlertMessage, visibleJobs, visibleUsers } from './privacy.ts';
import { msUntilNext, nextRotationPath, parseRotateSeconds } from './rotation.ts';

describe('privacy filtering', () => {
  it('shows no user or job names in privacy mode, all otherwise', () => {
    expect(visibleUsers(['kim.minji', 'lee.jihoon'], true)).toEqual([]);
    expect(visibleUsers(['kim.minji'], false)).toEqual(['kim.minji']);
    expect(visibleUsers(undefined, false)).toEqual([]);
    expect(visibleJobs(['job-kim.minji-1'], true)).toEqual([]);
    expect(visibleJobs(['4812'], false)).toEqual(['4812']);
    expect(visibleAlertMessage('kim.minji holds 4 idle GPUs', true)).toBeNull();
    expect(visibleAlertMessage('x', false)).toBe('x');
  });

  it('parses on/off flags', () => {
    expect(parseFlag('1')).toBe(true);
    expect(parseFlag('')).toBe(true);
    expect(parseFlag('off')).toBe(false);
    expect(parseFlag('maybe')).toBeUndefined();
    expect(parseFlag(null)).toBeUndefined();
  });
});

describe('kiosk rotation', () => {
  it('parses ?rotate= seconds, clamped, null when off or invalid', () => {
    expect(parseRotateSeconds('30')).toBe(30);
    expect(parseRotateSeconds('1')).toBe(5);
    expect(parseRotateSeconds('99999')).toBe(3600);
    expect(parseRotateSeconds('0')).toBeNull();
    expect(parseRotateSeconds('abc')).toBeNull();
    expect(parseRotateSeconds(null)).toBeNull();
  });

  it('cycles wall → projects → trends → wall; unknown paths restart at the wall', () => {
    expect(nextRotationPath('/')).toBe('/projects');
    expect(nextRotationPath('/projects')).toBe('/trends');
    expect(nextRotationPath('/trends')).toBe('/');
    expect(nextRotationPath('/alerts')).toBe('/');
  });

  it('schedules from when the view was shown, never negative', () => {
    expect(msUntilNext(1000, 1000, 30)).toBe(30_000);
    expect(msUntilNext(1000, 21_000, 30)).toBe(10_000);
    expect(msUntilNext(1000, 99_000, 30)).toBe(0);
  });

  it('reads the display URL', () => {
    expect(parseKioskParams('?kiosk=1&rotate=30&privacy=0&color=temp&token=abc')).toEqual({
      kiosk: true,
      rotateSeconds: 30,
      privacy: false,
      colorMode: 'temperature',
      token: 'abc',
    });
    expect(parseKioskParams('')).toEqual({
      kiosk: false,
      rotateSeconds: null,
      privacy: undefined,
      colorMode: undefined,
      token: null,
    });
  });
});
