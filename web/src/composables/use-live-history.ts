import type { GpuView, HistoryTier } from '@gpupulse/protocol';
import { computed, onScopeDispose, type Ref, shallowRef, watch } from 'vue';
import {
  capacityFor,
  type GpuChartMetric,
  LiveSeries,
  type Point,
  parseHistory,
  pointsForGpu,
  type RangeId,
  rangeMs,
  seriesId,
  stepForRange,
} from '../lib/history.ts';
import { useFleetStore } from '../stores/fleet.ts';
import { useHistoryStore } from '../stores/history.ts';

export type HistoryStatus = 'loading' | 'ready' | 'missing' | 'error';

export interface UseLiveHistoryOptions {
  node: Readonly<Ref<string>>;
  /** One GPU (scope `gpu`, id = its uuid), or null for every GPU of the node (scope `node`). */
  gpuIndex: Readonly<Ref<number | null>>;
  range: Readonly<Ref<RangeId>>;
  metrics: readonly GpuChartMetric[];
}

/**
 * Chart data for a node's or a GPU's metrics: history for the chosen range from
 * `/api/v1/history`, continued every second with the live values of the fleet store. One
 * bounded `LiveSeries` per metric and GPU; a new range or subject starts fresh buffers
 * (and aborts the previous request). Without the history endpoint the charts still fill
 * from live values (`status: 'missing'`).
 */
export function useLiveHistory(o: UseLiveHistoryOptions) {
  const fleet = useFleetStore();
  const api = useHistoryStore();

  const status = shallowRef<HistoryStatus>('loading');
  const errorMessage = shallowRef<string | null>(null);
  const tier = shallowRef<HistoryTier | null>(null);
  /** Bumped whenever any buffer changes; charts watch it. */
  const version = shallowRef(0);
  const stepMs = shallowRef(stepForRange(rangeMs(o.range.value)));
  let buffers = new Map<string, LiveSeries>();
  let controller: AbortController | null = null;

  const nodeView = computed(() => {
    void fleet.version;
    return fleet.nodes.get(o.node.value) ?? null;
  });
  const gpus = computed<GpuView[]>(() => {
    const n = nodeView.value;
    if (!n) return [];
    return o.gpuIndex.value === null ? n.gpus : n.gpus.filter((g) => g.index === o.gpuIndex.value);
  });
  /** The GPU's uuid (scope `gpu` needs it), null for scope `node`; undefined until the fleet knows the node / GPU. */
  const gpuUuid = computed(() => {
    if (!nodeView.value) return undefined;
    return o.gpuIndex.value === null ? null : (gpus.value[0]?.uuid ?? undefined);
  });

  function buffer(metric: string, uuid: string): LiveSeries {
    const id = seriesId(metric, uuid);
    let b = buffers.get(id);
    if (!b) {
      const ms = rangeMs(o.range.value);
      b = new LiveSeries({ capacity: capacityFor(ms, stepMs.value), stepMs: stepMs.value });
      buffers.set(id, b);
    }
    return b;
  }

  async function load(): Promise<void> {
    controller?.abort();
    const ms = rangeMs(o.range.value);
    stepMs.value = stepForRange(ms);
    buffers = new Map();
    tier.value = null;
    errorMessage.value = null;
    status.value = 'loading';
    version.value++;
    appendLive();
    const uuid = gpuUuid.value;
    if (uuid === undefined) return; // wait for the fleet to know this node / GPU
    const c = new AbortController();
    controller = c;
    const now = Date.now();
    try {
      const result = await api.history(
        {
          scope: o.gpuIndex.value === null ? 'node' : 'gpu',
          id: o.gpuIndex.value === null ? o.node.value : uuid,
          metrics: o.metrics,
          from: now - ms,
          to: now,
          stepMs: stepMs.value,
        },
        c.signal,
      );
      if (c.signal.aborted) return;
      if (result.kind === 'ok') {
        const parsed = parseHistory(result.data);
        const step = result.data.stepMs > 0 ? result.data.stepMs : stepMs.value;
        stepMs.value = step;
        for (const g of gpus.value)
          for (const m of o.metrics) buffer(m, g.uuid).setHistory(pointsForGpu(parsed, m, g) ?? [], step);
        tier.value = result.data.tier;
        status.value = 'ready';
      } else if (result.kind === 'missing') {
        status.value = 'missing';
      } else {
        errorMessage.value = result.message;
        status.value = 'error';
      }
    } catch {
      // aborted: a newer request owns the state
      return;
    }
    version.value++;
  }

  let lastAppendTs: number | null = null;
  function appendLive(): void {
    const n = nodeView.value;
    const t = n?.lastSampleTs ?? n?.lastSeen ?? null;
    if (!n || t === null || n.status === 'offline') return;
    if (t === lastAppendTs && buffers.size > 0) return;
    lastAppendTs = t;
    let changed = false;
    for (const g of gpus.value)
      for (const m of o.metrics) {
        const v = g[m];
        if (buffer(m, g.uuid).appendLive(t, typeof v === 'number' ? v : null)) changed = true;
      }
    if (changed) version.value++;
  }

  watch(
    () => [o.node.value, o.gpuIndex.value, o.range.value, gpuUuid.value] as const,
    (now, before) => {
      // The uuid appearing later (fleet snapshot after the page opened) only matters while waiting.
      if (
        before &&
        now[0] === before[0] &&
        now[1] === before[1] &&
        now[2] === before[2] &&
        before[3] !== undefined
      )
        return;
      lastAppendTs = null;
      void load();
    },
    { immediate: true },
  );
  watch(() => fleet.version, appendLive);

  onScopeDispose(() => controller?.abort());

  function points(metric: GpuChartMetric, uuid: string): Point[] {
    return buffers.get(seriesId(metric, uuid))?.points() ?? [];
  }

  return { status, errorMessage, tier, version, stepMs, gpus, nodeView, points, reload: load };
}
