/**
 * Ingest stages after validation, for the accepted samples of one report of one node:
 * admission (backpressure) → fleet state (live view, process lists, rollups) → points → write
 * buffer → driver events (alerts). The socket handler validates, hands over and acks.
 */
import type { GpuEvent, GpuMetrics, Sample } from '@gpupulse/protocol';
import type { FleetState } from '../fleet/fleet-state.ts';
import type { MetricPoint } from '../storage/metric-store.ts';
import { SlowFieldGate, samplePoints } from '../storage/schema.ts';
import type { WriteBuffer } from '../storage/write-buffer.ts';

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

/** Points a sample will make, roughly (GPUs + host + processes), for admission. */
function estimatePoints(samples: readonly Sample[]): number {
  let n = 0;
  for (const s of samples) n += s.gpus.length + 1 + (s.processes?.length ?? 0);
  return n;
}

export class IngestPipeline {
  private readonly slowFields = new SlowFieldGate();

  constructor(private readonly deps: IngestPipelineDeps) {}

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
    for (const { sample, processes } of ingested) {
      for (const p of samplePoints(node, sample, processes, fleet.attributeFn, this.slowFields))
        points.push(p);
    }
    buffer.enqueue(points);
    if (this.deps.onGpuEvents) {
      const events: GpuEvent[] = [];
      for (const { sample } of ingested) if (sample.gpuEvents?.length) events.push(...sample.gpuEvents);
      if (events.length > 0) this.deps.onGpuEvents(node, events, ingested[ingested.length - 1]!.sample.gpus);
    }
    return { ok: true, points: points.length };
  }
}
