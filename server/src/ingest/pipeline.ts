/**
 * The server's ingest pipeline for the accepted samples of one report of one node. Each stage is
 * a module with one input type:
 *
 * 0. early refusal — the socket handler (and, for replays, the frame parser) refuses a report
 *    before it is parsed or validated while `admit` would refuse it anyway (`refuseEarly`), so a
 *    resend under sustained overload costs next to nothing;
 * 1. validation — `ingest/validate.ts`: the raw report → `Sample[]` accepted + refused ones, a
 *    slice at a time (done by the socket handler, which then hands the accepted samples over
 *    here and acks);
 * 2. admission — `storage/write-buffer.ts` `admit()`: refuse the report (UNAVAILABLE, nothing
 *    recorded, the agent keeps and resends it) when storage is too far behind;
 * 3. fleet state — `fleet/fleet-state.ts` `ingest()`: `Sample[]` → `IngestedSample[]` (ts order,
 *    sorted only when out of order; process deltas applied once); updates the live view and
 *    hands the same `IngestedSample[]` to the rollups (`onSamples`);
 * 4. points — `ingest/points.ts`: `IngestedSample[]` → `MetricPoint[]`;
 * 5. write buffer — `storage/write-buffer.ts` `enqueue()`: `MetricPoint[]` → the write journal on
 *    disk (before the ack: `storage/journal.ts`) → batches → InfluxDB (or the disk spool when
 *    storage is slow or down);
 * 6. driver events — `GpuEvent[]` → the alert engine (`onGpuEvents`); alert rules themselves run
 *    on the live view once a second (`alerts/engine.ts`, only for what changed).
 */
import type { GpuEvent, GpuMetrics, Sample } from '@gpupulse/protocol';
import type { FleetState } from '../fleet/fleet-state.ts';
import type { MetricPoint } from '../storage/metric-store.ts';
import type { WriteBuffer } from '../storage/write-buffer.ts';
import { PointsStage } from './points.ts';

export interface IngestPipelineDeps {
  fleet: FleetState;
  buffer: WriteBuffer;
  /** Driver events (XID …) of accepted samples, for the alert engine. */
  onGpuEvents?(node: string, events: GpuEvent[], gpus: readonly GpuMetrics[]): void;
}

export type IngestOutcome =
  | { ok: true; points: number }
  | {
      ok: false;
      code: 'UNAVAILABLE';
      reason: 'backlog_full' | 'spool_full';
      message: string;
      retryAfterMs: number;
    };

/**
 * Points samples will make, roughly (GPUs + host + processes), for admission. Also of samples not
 * validated yet (admission before validation): whatever is not an array counts as none.
 */
export function estimatePoints(samples: readonly unknown[]): number {
  let n = 0;
  for (const s of samples) {
    const { gpus, processes } = (typeof s === 'object' && s !== null ? s : {}) as {
      gpus?: unknown;
      processes?: unknown;
    };
    n += 1 + (Array.isArray(gpus) ? gpus.length : 0) + (Array.isArray(processes) ? processes.length : 0);
  }
  return n;
}

export class IngestPipeline {
  private readonly points: PointsStage;

  constructor(private readonly deps: IngestPipelineDeps) {
    this.points = new PointsStage(() => deps.fleet.attributeFn);
  }

  /**
   * Takes validated samples of `node`. Refused as a whole (`UNAVAILABLE`, nothing recorded, the
   * agent keeps and resends them) when storage is too far behind; the live view still follows
   * them then, so a node under backpressure stays fresh on the wall.
   */
  ingest(node: string, samples: readonly Sample[], replay: boolean): IngestOutcome {
    const { fleet, buffer } = this.deps;
    const admission = buffer.admit(estimatePoints(samples));
    if (!admission.ok) {
      fleet.ingest(node, samples, { replay, record: false });
      const { reason, message, retryAfterMs } = admission;
      return { ok: false, code: 'UNAVAILABLE', reason, message, retryAfterMs };
    }
    const { samples: ingested } = fleet.ingest(node, samples, { replay });
    const points: MetricPoint[] = [];
    const n = this.points.build(node, ingested, points);
    buffer.enqueue(points);
    const onGpuEvents = this.deps.onGpuEvents;
    if (onGpuEvents) {
      let events: GpuEvent[] | null = null;
      for (const { sample } of ingested) {
        if (!sample.gpuEvents?.length) continue;
        events ??= [];
        events.push(...sample.gpuEvents);
      }
      if (events !== null) onGpuEvents(node, events, ingested[ingested.length - 1]!.sample.gpus);
    }
    return { ok: true, points: n };
  }
}
