import {
  applyNodePatch,
  type FleetDelta,
  type FleetSnapshot,
  type GpuView,
  type NodePatch,
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

/**
 * Applies a `fleet:delta` patch IN PLACE to the node record `rec` (its GPU records too): the same
 * result as protocol's `applyNodePatch`, without a new node or GPU object. A patch naming a GPU
 * index the node does not have is ignored for that GPU.
 */
export function patchNodeInPlace(rec: NodeView, patch: NodePatch): void {
  const target = rec as unknown as Record<string, unknown>;
  for (const key in patch) {
    if (key === 'gpus' || key === 'node') continue;
    target[key] = (patch as unknown as Record<string, unknown>)[key];
  }
  const gpus = patch.gpus;
  if (!gpus) return;
  const list = rec.gpus;
  for (const gp of gpus) {
    // GPU indices are usually positions: try that first, then search.
    let g: GpuView | undefined = list[gp.index];
    if (!g || g.index !== gp.index) g = list.find((x) => x.index === gp.index);
    if (!g) continue;
    const gt = g as unknown as Record<string, unknown>;
    for (const key in gp) gt[key] = (gp as unknown as Record<string, unknown>)[key];
  }
}

/**
 * The live fleet as a flat store of mutable records: snapshots and full nodes replace records,
 * patches are applied in place (no new node or GPU objects per delta), and every change bumps
 * `version` and the changed node's revision. Views that draw every GPU (the wall) read the records
 * and `changed`; views that compare nodes by identity get `view(name)`: an immutable copy made
 * lazily, only when asked for, and kept (the same object) while the node does not change.
 */
export class FleetRecords {
  /** Mutable node records by name (read-only for everyone but this class). */
  readonly records = new Map<string, NodeView>();
  /** Bumped on every change. */
  version = 0;
  /** Bumped when nodes come or go, or a node's GPU count changes (layouts depend on it). */
  membership = 0;
  /** Names of the nodes the last change touched (all of them after a snapshot). */
  changed: string[] = [];
  private revs = new Map<string, number>();
  private views = new Map<string, { rev: number; view: NodeView }>();

  get size(): number {
    return this.records.size;
  }

  /** Revision of a node (the `version` of its last change), 0 if unknown. */
  revision(name: string): number {
    return this.revs.get(name) ?? 0;
  }

  /** Replaces every record with the snapshot's nodes (copied: the store owns its records). */
  applySnapshot(snapshot: FleetSnapshot): void {
    this.records.clear();
    this.revs.clear();
    this.views.clear();
    const v = ++this.version;
    this.membership++;
    this.changed = [];
    for (const node of snapshot.nodes) {
      this.records.set(node.node, copyNode(node));
      this.revs.set(node.node, v);
      this.changed.push(node.node);
    }
  }

  /**
   * Applies a delta; returns whether anything changed (an empty delta is a heartbeat). Names of
   * patched nodes this store does not hold go to `missing` (the caller then resyncs).
   */
  applyDelta(delta: FleetDelta, missing?: string[]): boolean {
    const v = this.version + 1;
    const changed: string[] = [];
    let members = false;
    for (const node of delta.nodes) {
      const prev = this.records.get(node.node);
      if (!prev || prev.gpus.length !== node.gpus.length) members = true;
      this.records.set(node.node, copyNode(node));
      this.revs.set(node.node, v);
      changed.push(node.node);
    }
    for (const patch of delta.patches ?? []) {
      const rec = this.records.get(patch.node);
      if (!rec) {
        missing?.push(patch.node);
        continue;
      }
      patchNodeInPlace(rec, patch);
      this.revs.set(patch.node, v);
      changed.push(patch.node);
    }
    for (const name of delta.removed) {
      if (this.records.delete(name)) {
        this.revs.delete(name);
        this.views.delete(name);
        members = true;
        changed.push(name);
      }
    }
    if (changed.length === 0) return false;
    this.version = v;
    if (members) this.membership++;
    this.changed = changed;
    return true;
  }

  /** An immutable copy of the node (the same object until the node changes), or undefined. */
  view(name: string): NodeView | undefined {
    const rec = this.records.get(name);
    if (!rec) return undefined;
    const rev = this.revs.get(name) ?? 0;
    const cached = this.views.get(name);
    if (cached && cached.rev === rev) return cached.view;
    const view = copyNode(rec);
    this.views.set(name, { rev, view });
    return view;
  }
}

function copyNode(node: NodeView): NodeView {
  const gpus = new Array<GpuView>(node.gpus.length);
  for (let i = 0; i < gpus.length; i++) gpus[i] = { ...node.gpus[i]! };
  return { ...node, gpus };
}

/**
 * A read-only Map of immutable node views over `FleetRecords` (what `fleet.nodes` hands out):
 * `get` and iteration make each view lazily, so a page that reads five nodes copies five.
 */
export class NodeViews {
  constructor(private readonly fleet: FleetRecords) {}
  get size(): number {
    return this.fleet.records.size;
  }
  get(name: string): NodeView | undefined {
    return this.fleet.view(name);
  }
  has(name: string): boolean {
    return this.fleet.records.has(name);
  }
  *keys(): Generator<string> {
    yield* this.fleet.records.keys();
  }
  *values(): Generator<NodeView> {
    for (const name of this.fleet.records.keys()) yield this.fleet.view(name)!;
  }
  *entries(): Generator<[string, NodeView]> {
    for (const name of this.fleet.records.keys()) yield [name, this.fleet.view(name)!];
  }
  [Symbol.iterator](): Generator<[string, NodeView]> {
    return this.entries();
  }
  forEach(fn: (value: NodeView, key: string) => void): void {
    for (const [k, v] of this.entries()) fn(v, k);
  }
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

/**
 * Node names in natural order (`gpu-2` before `gpu-10`); `previous` (the last result) is reused
 * as is when the set of names did not change.
 */
export function nodeOrder(names: Iterable<string>, previous?: readonly string[]): readonly string[] {
  const list = [...names];
  if (previous && previous.length === list.length) {
    const set = new Set(previous);
    if (list.every((n) => set.has(n))) return previous;
  }
  return list.sort((a, b) => collator.compare(a, b));
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
