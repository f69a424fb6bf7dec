import { describe, expect, it } from 'vitest';
import { gpu } from '../test/fixtures.ts';
import { BADGE, badgeNames, countBadges, gpuBadges } from './gpu-badges.ts';

describe('GPU badges', () => {
  it('a healthy busy GPU has none', () => {
    expect(gpuBadges('online', gpu(0))).toBe(0);
  });

  it.each([
    ['hot at 85 °C', gpu(0, { temperatureCelsius: 85 }), ['hot']],
    ['not hot at 84 °C', gpu(0, { temperatureCelsius: 84 }), []],
    ['thermal slowdown', gpu(0, { clocksEventReasons: ['hw_thermal_slowdown'] }), ['throttle']],
    ['power brake', gpu(0, { clocksEventReasons: ['hw_power_brake_slowdown'] }), ['throttle']],
    ['idle clocks are not throttling', gpu(0, { clocksEventReasons: ['gpu_idle', 'sw_power_cap'] }), []],
    ['uncorrected ECC', gpu(0, { eccErrorsUncorrectedVolatile: 2 }), ['error']],
    ['row remap failure', gpu(0, { remappedRowsFailure: true }), ['error']],
    ['GPU error state', gpu(0, { state: 'error' }), ['error']],
    ['GPU stale', gpu(0, { state: 'stale' }), ['stale']],
    ['held but idle', gpu(0, { idleHeld: true, utilizationGpuPercent: 0 }), ['idleHeld']],
    [
      'several at once',
      gpu(0, { temperatureCelsius: 90, clocksEventReasons: ['sw_thermal_slowdown'] }),
      ['hot', 'throttle'],
    ],
  ] as const)('%s', (_name, g, expected) => {
    expect(badgeNames(gpuBadges('online', g))).toEqual(expected);
  });

  it('node status: offline replaces everything, stale adds stale', () => {
    expect(gpuBadges('offline', gpu(0, { temperatureCelsius: 95 }))).toBe(BADGE.offline);
    expect(badgeNames(gpuBadges('stale', gpu(0)))).toEqual(['stale']);
  });

  it('a firing XID alert marks the GPU with the error badge', () => {
    expect(badgeNames(gpuBadges('online', gpu(0), true))).toEqual(['error']);
  });

  it('counts badges over a fleet', () => {
    const c = countBadges([BADGE.hot | BADGE.throttle, BADGE.hot, 0]);
    expect(c.hot).toBe(2);
    expect(c.throttle).toBe(1);
    expect(c.error).toBe(0);
  });
});
