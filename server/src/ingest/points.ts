/**
 * Ingest stage "points": the accepted samples of one node as fleet state hands them over (each
 * with the process list in effect for it) → storage points, appended to the caller's batch. The
 * point builders and InfluxDB names are storage/schema.ts's; this stage holds the per-GPU state
 * that decides which fields a point carries (slow fields on change and once a minute).
 */
import type { AttributeFn } from '../fleet/attribution.ts';
import type { IngestedSample } from '../fleet/fleet-state.ts';
import type { MetricPoint } from '../storage/metric-store.ts';
import { SlowFieldGate, samplePoints } from '../storage/schema.ts';

export class PointsStage {
  private readonly slowFields = new SlowFieldGate();

  constructor(private readonly attribute: () => AttributeFn) {}

  /** Appends the points of `samples` (one node's, in `ts` order) to `out`; returns how many. */
  build(node: string, samples: readonly IngestedSample[], out: MetricPoint[]): number {
    const before = out.length;
    const attribute = this.attribute();
    for (let i = 0; i < samples.length; i++) {
      const { sample, processes } = samples[i]!;
      const points = samplePoints(node, sample, processes, attribute, this.slowFields);
      for (let j = 0; j < points.length; j++) out.push(points[j]!);
    }
    return out.length - before;
  }
}
