import {
  applyNodePatch,
  type FleetDelta,
  type FleetSnapshot,
  type GpuView,
  type NodeStatus,
  type NodeView,
} from '@gpupulse/protocol';

/** Live nodes by name. Node objects are replaced, never mutated, so identity tells what changed. */
export type NodeMap = Map<string, NodeView>;

/** A GPU counts as busy at or above this utilization (%). */
export const BUSY_THRESHOLD_PERCENT = 5;
/** A GPU at or above this temperature (°C) gets the hot badge. */
export const HOT_TEMPERATURE_CELSIUS = 85;

/** Replaces the whole map's content with the snapshot's nodes (in place: the map keeps its identity). */
export function applySnapshot(nodes: NodeMap, snapshot: FleetSnapshot): void {
  nodes.clear();
  for (const node of snapshot.nodes) nodes.set(node.node, node);
}

/**
 * Applies a delta in place: nodes sent in full replace their previous version, patches replace
 * it with a patched copy, removed names are dropped. Returns whether anything changed (an empty
 * delta is a heartbeat). Names of patched nodes this client does not hold go to `missing` (the
 * caller then asks for a fresh snapshot).
 */
export function applyDelta(nodes: NodeMap, delta: FleetDelta, missing?: string[]): boolean {
  let changed = false;
  for (const node of delta.nodes) {
    nodes.set(node.node, node);
    changed = true;
  }
  for (const patch of delta.patches ?? []) {
    const prev = nodes.get(patch.node);
    if (!prev) {
      missing?.push(patch.node);
      continue;
    }
    nodes.set(patch.node, applyNodePatch(prev, patch));
    changed = true;
  }
  for (const name of delta.removed) {
    if (nodes.delete(name)) changed = true;
  }
  return changed;
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/**
 * Nodes in natural name order (`gpu-2` before `gpu-10`). With `previous` (the last result's
 * names), an unchanged set of names reuses that order in O(n) instead of sorting again: most
 * updates change values, not membership, and a collator sort of 1,000 names costs milliseconds.
 */
export function sortedNodes(nodes: NodeMap, previous?: readonly string[]): NodeView[] {
  if (previous && previous.length === nodes.size) {
    const out: NodeView[] = new Array(previous.length);
    let ok = true;
    for (let i = 0; i < previous.length; i++) {
      const n = nodes.get(previous[i]!);
      if (!n) {
        ok = false;
        break;
      }
      out[i] = n;
    }
    if (ok) return out;
  }
  return [...nodes.values()].sort((a, b) => collator.compare(a.node, b.node));
}

/** How one GPU reads on the overview. */
export type GpuActivity = 'busy' | 'idle' | 'unknown' | 'offline';

/**
 * `offline`: its node is offline. `unknown`: the node is stale, the GPU is stale or in error,
 * or the driver does not report utilization (e.g. MIG mode) — never counted as 0 %.
 */
export function gpuActivity(status: NodeStatus, gpu: GpuView): GpuActivity {
  if (status === 'offline') return 'offline';
  const util = currentUtilization(status, gpu);
  if (util === null) return 'unknown';
  return util >= BUSY_THRESHOLD_PERCENT ? 'busy' : 'idle';
}

/** The GPU's utilization if it is current and known, else null. */
export function currentUtilization(status: NodeStatus, gpu: GpuView): number | null {
  if (status !== 'online' || gpu.state !== 'ok') return null;
  return gpu.utilizationGpuPercent;
}

export interface FleetHeadline {
  nodesTotal: number;
  nodesOnline: number;
  nodesStale: number;
  nodesOffline: number;
  gpusTotal: number;
  gpusBusy: number;
  gpusIdle: number;
  gpusUnknown: number;
  gpusOffline: number;
  /** Mean utilization (%) over GPUs with a known, current utilization; null when there are none. */
  meanUtilizationPercent: number | null;
  /** Sum of the power draw of GPUs on online nodes (kW); null when no GPU reports power. */
  powerKilowatts: number | null;
}

export function computeHeadline(nodes: Iterable<NodeView>): FleetHeadline {
  const h: FleetHeadline = {
    nodesTotal: 0,
    nodesOnline: 0,
    nodesStale: 0,
    nodesOffline: 0,
    gpusTotal: 0,
    gpusBusy: 0,
    gpusIdle: 0,
    gpusUnknown: 0,
    gpusOffline: 0,
    meanUtilizationPercent: null,
    powerKilowatts: null,
  };
  let utilSum = 0;
  let utilCount = 0;
  let watts = 0;
  let wattsCount = 0;
  for (const node of nodes) {
    h.nodesTotal++;
    if (node.status === 'online') h.nodesOnline++;
    else if (node.status === 'stale') h.nodesStale++;
    else h.nodesOffline++;
    for (const gpu of node.gpus) {
      h.gpusTotal++;
      const activity = gpuActivity(node.status, gpu);
      if (activity === 'busy') h.gpusBusy++;
      else if (activity === 'idle') h.gpusIdle++;
      else if (activity === 'unknown') h.gpusUnknown++;
      else h.gpusOffline++;
      const util = currentUtilization(node.status, gpu);
      if (util !== null) {
        utilSum += util;
        utilCount++;
      }
      if (node.status === 'online' && gpu.powerDrawWatts !== null) {
        watts += gpu.powerDrawWatts;
        wattsCount++;
      }
    }
  }
  if (utilCount > 0) h.meanUtilizationPercent = utilSum / utilCount;
  if (wattsCount > 0) h.powerKilowatts = watts / 1000;
  return h;
}

export interface NodeSummary {
  gpuCount: number;
  /** Mean over the node's GPUs with known, current utilization. */
  meanUtilizationPercent: number | null;
  maxTemperatureCelsius: number | null;
}

export function summarizeNode(node: NodeView): NodeSummary {
  let sum = 0;
  let count = 0;
  let maxTemp: number | null = null;
  for (const gpu of node.gpus) {
    const util = currentUtilization(node.status, gpu);
    if (util !== null) {
      sum += util;
      count++;
    }
    const t = gpu.temperatureCelsius;
    if (t !== null && (maxTemp === null || t > maxTemp)) maxTemp = t;
  }
  return {
    gpuCount: node.gpus.length,
    meanUtilizationPercent: count > 0 ? sum / count : null,
    maxTemperatureCelsius: maxTemp,
  };
}

export function isHot(gpu: GpuView): boolean {
  return gpu.temperatureCelsius !== null && gpu.temperatureCelsius >= HOT_TEMPERATURE_CELSIUS;
}
