import type { GpuProcess } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import { FleetState } from '../src/fleet/fleet-state.ts';
import { PointsStage } from '../src/ingest/points.ts';
import type { MetricPoint } from '../src/storage/metric-store.ts';
import { gpu, sample } from './helpers.ts';

const T0 = 1_750_000_000_000;

describe('ingest points stage', () => {
  it("appends one report's points in ts order: GPUs, host, processes; slow fields on the first sample only", () => {
    const clock = new ManualClock(T0 + 2000);
    const fleet = new FleetState({ clock, attribute: () => 'p1' });
    fleet.connect('n1', 'c1', 1000);
    const proc: GpuProcess = {
      gpuUuid: gpu(0).uuid,
      pid: 42,
      name: 'python',
      usedMemoryMiB: 1024,
      user: 'ada',
    };
    const g = [gpu(0, { driverVersion: '590.48.01' }), gpu(1, { driverVersion: '590.48.01' })];
    // Sent out of order: fleet state sorts them once; the stage keeps that order.
    const { samples } = fleet.ingest('n1', [
      sample(2, T0 + 1000, { gpus: g }),
      sample(1, T0, { gpus: g, processes: [proc] }),
    ]);
    const stage = new PointsStage(() => fleet.attributeFn);
    const out: MetricPoint[] = [{ measurement: 'already-there', tags: {}, ts: 0 }];
    const n = stage.build('n1', samples, out);
    expect(n).toBe(out.length - 1);
    const summary = out.slice(1).map((p) => `${p.measurement}@${p.ts - T0}`);
    expect(summary).toEqual([
      'nvidia_smi@0',
      'nvidia_smi@0',
      'gpupulse_host@0',
      'gpupulse_process@0',
      'nvidia_smi@1000',
      'nvidia_smi@1000',
      'gpupulse_host@1000',
    ]);
    const gpuPoints = out.filter((p) => p.measurement === 'nvidia_smi');
    expect(gpuPoints[0]!.strings?.driver_version).toBe('590.48.01');
    expect(gpuPoints[0]!.tags.project).toBe('p1');
    expect(gpuPoints[1]!.tags.project).toBeUndefined();
    // One second later, nothing slow changed: the load fields only.
    expect(gpuPoints[2]!.strings?.driver_version).toBeUndefined();
    expect(gpuPoints[2]!.ints?.utilization_gpu).toBe(42);
    expect(gpuPoints[2]!.tags.project).toBe('p1');
  });
});
