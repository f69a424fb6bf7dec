import { describe, expect, it } from 'vitest';
import { gpu } from '../test/fixtures.ts';
import { computeHints, type HintGpu, throttleCause } from './hints.ts';

const NOW = 10_000_000;
const MIN = 60_000;

function held(index: number, util: number, extra: Parameters<typeof gpu>[1] = {}): HintGpu {
  return {
    node: 'gpu-a01',
    gpu: gpu(index, {
      utilizationGpuPercent: util,
      project: 'fu_video',
      processCount: 1,
      jobs: ['4812'],
      ...extra,
    }),
  };
}

describe('computeHints', () => {
  it('"4 GPUs held, 3 below 5 % for 40 min"', () => {
    const gpus = [
      held(0, 90, { memoryUsedMiB: 60_000 }),
      held(1, 1, { idleHeld: true, idleHeldSince: NOW - 40 * MIN, memoryUsedMiB: 60_000 }),
      held(2, 2, { idleHeld: true, idleHeldSince: NOW - 55 * MIN, memoryUsedMiB: 60_000 }),
      held(3, 0, { idleHeld: true, idleHeldSince: NOW - 41 * MIN, memoryUsedMiB: 60_000 }),
    ];
    const hints = computeHints(gpus, { now: NOW });
    expect(hints[0]).toEqual({
      kind: 'idleHeld',
      severity: 'warning',
      count: 4,
      params: { held: 4, idle: 3, minutes: 40 },
    });
  });

  it('"job 4812 uses 9 % of GPU memory"', () => {
    const total = 81_559;
    const gpus = [held(0, 90, { memoryUsedMiB: total * 0.09 }), held(1, 95, { memoryUsedMiB: total * 0.09 })];
    const hints = computeHints(gpus, { now: NOW });
    expect(hints).toEqual([
      { kind: 'lowMemory', severity: 'info', count: 2, params: { job: '4812', percent: 9, gpus: 2 } },
    ]);
  });

  it('names throttling causes, hot GPUs and ECC errors per GPU', () => {
    const gpus: HintGpu[] = [
      {
        node: 'x',
        gpu: gpu(3, { clocksEventReasons: ['hw_thermal_slowdown', 'sw_power_cap'], memoryUsedMiB: 70_000 }),
      },
      { node: 'y', gpu: gpu(1, { temperatureCelsius: 91, memoryUsedMiB: 70_000 }) },
      { node: 'z', gpu: gpu(2, { eccErrorsUncorrectedVolatile: 2, memoryUsedMiB: 70_000 }) },
    ];
    const kinds = computeHints(gpus, { now: NOW }).map((h) => [h.kind, h.params]);
    expect(kinds).toEqual([
      ['throttling', { node: 'x', index: 3, reason: 'thermal' }],
      ['hot', { node: 'y', index: 1, temp: 91 }],
      ['eccErrors', { node: 'z', index: 2, errors: 2 }],
    ]);
  });

  it('decodes throttle causes; idle and app-clock reasons are not throttling', () => {
    expect(throttleCause(['gpu_idle'])).toBeNull();
    expect(throttleCause(['applications_clocks_setting'])).toBeNull();
    expect(throttleCause(undefined)).toBeNull();
    expect(throttleCause(['sw_power_cap'])).toBe('power');
    expect(throttleCause(['hw_power_brake_slowdown'])).toBe('powerBrake');
    expect(throttleCause(['hw_slowdown'])).toBe('hardware');
    expect(throttleCause(['sw_thermal_slowdown', 'sw_power_cap'])).toBe('thermal');
  });

  it('counts GPUs whose figures are unknown, and never calls them idle', () => {
    const gpus: HintGpu[] = [
      { node: 'a', gpu: gpu(0, { utilizationGpuPercent: null, processCount: 1, project: 'p' }) },
      { node: 'b', gpu: gpu(1, { utilizationGpuPercent: 0, processCount: 1, project: 'p' }), nodeDown: true },
    ];
    const hints = computeHints(gpus, { now: NOW });
    expect(hints).toEqual([{ kind: 'unknown', severity: 'info', count: 2, params: { gpus: 2 } }]);
  });

  it('says all is well when nothing needs attention', () => {
    const gpus = [held(0, 80, { memoryUsedMiB: 70_000 }), held(1, 90, { memoryUsedMiB: 70_000 })];
    expect(computeHints(gpus, { now: NOW })).toEqual([
      { kind: 'allBusy', severity: 'ok', count: 2, params: { gpus: 2, percent: 85 } },
    ]);
    expect(computeHints([], { now: NOW })).toEqual([]);
  });

  it("follows the server's idleHeld (10-minute rule), not a low reading or idleHeldSince alone; honours the limit", () => {
    // Below 5 % for 1 minute: the server has started the stretch but not yet called it idle-held.
    const early = [
      held(0, 1, { memoryUsedMiB: 70_000, idleHeld: false, idleHeldSince: NOW - MIN }),
      held(1, 2, { memoryUsedMiB: 70_000, idleHeld: false, idleHeldSince: NOW - MIN }),
    ];
    expect(computeHints(early, { now: NOW }).some((x) => x.kind === 'idleHeld')).toBe(false);
    const gpus = [
      held(0, 1, { memoryUsedMiB: 70_000, idleHeld: true }),
      held(1, 2, { memoryUsedMiB: 70_000, idleHeld: true }),
    ];
    const [h] = computeHints(gpus, { now: NOW });
    expect(h).toMatchObject({ kind: 'idleHeld', params: { held: 2, idle: 2, minutes: 0 } });
    const many = Array.from({ length: 30 }, (_, i) => ({
      node: `n${i}`,
      gpu: gpu(0, { temperatureCelsius: 95 }),
    }));
    expect(computeHints(many, { now: NOW, limit: 5 })).toHaveLength(5);
  });
});
