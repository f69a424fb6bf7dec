import type { GpuProcess, GpuView, Inventory, NodeStatus, NodeView, Sample } from '@gpupulse/protocol';
import type { Clock } from '../clock.ts';
import { type AttributeFn, attributeUnassigned } from './attribution.ts';

export interface FleetStateOptions {
  clock: Clock;
  attribute?: AttributeFn;
  /** A node is `stale` after this many of its intervals without a sample (default 3). */
  staleIntervals?: number;
  /** Interval assumed when the agent does not say (default 1000 ms). */
  defaultIntervalMs?: number;
  /** A connected node silent this long is `offline` (default 30 s). */
  offlineAfterMs?: number;
  /** A disconnected node is forgotten (sent in `removed`) after this long (default 24 h). */
  forgetAfterMs?: number;
}

interface NodeEntry {
  node: string;
  status: NodeStatus;
  connectionId: string | null;
  connectedAt: number | null;
  disconnectedAt: number | null;
  intervalMs: number;
  lastSeen: number | null;
  lastSample: Sample | null;
  processes: readonly GpuProcess[];
  inventory: Inventory | null;
  view: NodeView | null;
}

/**
 * Live state of the fleet: latest sample per node (and so per GPU), node status, the set of nodes
 * changed since the last delta. Pure state; the server drives `sweep()` and `takeChanges()`.
 */
export class FleetState {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly dirty = new Set<string>();
  private readonly removed = new Set<string>();
  private readonly clock: Clock;
  private readonly attribute: AttributeFn;
  private readonly staleIntervals: number;
  private readonly defaultIntervalMs: number;
  private readonly offlineAfterMs: number;
  private readonly forgetAfterMs: number;

  constructor(opts: FleetStateOptions) {
    this.clock = opts.clock;
    this.attribute = opts.attribute ?? attributeUnassigned;
    this.staleIntervals = opts.staleIntervals ?? 3;
    this.defaultIntervalMs = opts.defaultIntervalMs ?? 1000;
    this.offlineAfterMs = opts.offlineAfterMs ?? 30_000;
    this.forgetAfterMs = opts.forgetAfterMs ?? 24 * 3600_000;
  }

  get attributeFn(): AttributeFn {
    return this.attribute;
  }

  /** An agent connected (a later connection of the same node replaces the earlier one). */
  connect(node: string, connectionId: string, intervalMs?: number): void {
    const e = this.entry(node);
    e.connectionId = connectionId;
    e.connectedAt = this.clock.now();
    e.disconnectedAt = null;
    e.intervalMs = intervalMs ?? this.defaultIntervalMs;
    this.refresh(e, true);
  }

  /** An agent disconnected; ignored when that connection was already replaced. */
  disconnect(node: string, connectionId: string): void {
    const e = this.nodes.get(node);
    if (!e || e.connectionId !== connectionId) return;
    e.connectionId = null;
    e.disconnectedAt = this.clock.now();
    this.refresh(e, true);
  }

  /**
   * Takes samples of a node. Only a sample newer than the latest one (by agent `ts`) updates live
   * state; replayed/older ones are only stored. Returns the process list in effect.
   */
  ingest(node: string, samples: readonly Sample[]): { updated: boolean } {
    const e = this.entry(node);
    let newest: Sample | null = null;
    for (const s of samples) {
      if ((newest === null || s.ts > newest.ts) && (e.lastSample === null || s.ts > e.lastSample.ts))
        newest = s;
    }
    if (!newest) return { updated: false };
    e.lastSample = newest;
    if (newest.processes) e.processes = newest.processes;
    e.lastSeen = this.clock.now();
    this.refresh(e, true);
    return { updated: true };
  }

  /** The process list last reported by a node (used when a sample carries none). */
  processesOf(node: string): readonly GpuProcess[] {
    return this.nodes.get(node)?.processes ?? [];
  }

  setInventory(node: string, inventory: Inventory): void {
    this.entry(node).inventory = inventory;
  }

  inventoryOf(node: string): Inventory | null {
    return this.nodes.get(node)?.inventory ?? null;
  }

  /** Recomputes statuses from the clock; changed nodes become dirty; long-gone nodes are forgotten. */
  sweep(): void {
    const now = this.clock.now();
    for (const e of this.nodes.values()) {
      if (
        e.connectionId === null &&
        e.disconnectedAt !== null &&
        now - e.disconnectedAt > this.forgetAfterMs
      ) {
        this.nodes.delete(e.node);
        this.dirty.delete(e.node);
        this.removed.add(e.node);
        continue;
      }
      this.refresh(e, false);
    }
  }

  /** Nodes changed (and removed) since the last call. */
  takeChanges(): { nodes: NodeView[]; removed: string[] } {
    const nodes: NodeView[] = [];
    for (const name of this.dirty) {
      const e = this.nodes.get(name);
      if (e) nodes.push(this.viewOf(e));
    }
    this.dirty.clear();
    const removed = [...this.removed];
    this.removed.clear();
    return { nodes, removed };
  }

  /** Every node, sorted by name. */
  snapshot(): NodeView[] {
    return [...this.nodes.values()].sort((a, b) => (a.node < b.node ? -1 : 1)).map((e) => this.viewOf(e));
  }

  view(node: string): NodeView | null {
    const e = this.nodes.get(node);
    return e ? this.viewOf(e) : null;
  }

  counts(): { nodes: number; gpus: number; connected: number; byStatus: Record<NodeStatus, number> } {
    let gpus = 0;
    let connected = 0;
    const byStatus: Record<NodeStatus, number> = { online: 0, stale: 0, offline: 0 };
    for (const e of this.nodes.values()) {
      gpus += e.lastSample?.gpus.length ?? 0;
      if (e.connectionId !== null) connected++;
      byStatus[e.status]++;
    }
    return { nodes: this.nodes.size, gpus, connected, byStatus };
  }

  private entry(node: string): NodeEntry {
    let e = this.nodes.get(node);
    if (!e) {
      e = {
        node,
        status: 'offline',
        connectionId: null,
        connectedAt: null,
        disconnectedAt: this.clock.now(),
        intervalMs: this.defaultIntervalMs,
        lastSeen: null,
        lastSample: null,
        processes: [],
        inventory: null,
        view: null,
      };
      this.nodes.set(node, e);
      this.removed.delete(node);
    }
    return e;
  }

  private statusOf(e: NodeEntry): NodeStatus {
    if (e.connectionId === null) return 'offline';
    const since = e.lastSeen ?? e.connectedAt ?? this.clock.now();
    const silent = this.clock.now() - since;
    if (silent >= this.offlineAfterMs) return 'offline';
    if (silent > this.staleIntervals * e.intervalMs) return 'stale';
    return 'online';
  }

  private refresh(e: NodeEntry, changed: boolean): void {
    const status = this.statusOf(e);
    if (status !== e.status || changed) {
      e.status = status;
      e.view = null;
      this.dirty.add(e.node);
    }
  }

  private viewOf(e: NodeEntry): NodeView {
    if (e.view) return e.view;
    const s = e.lastSample;
    const byGpu = new Map<string, GpuProcess[]>();
    for (const p of e.processes) {
      const list = byGpu.get(p.gpuUuid);
      if (list) list.push(p);
      else byGpu.set(p.gpuUuid, [p]);
    }
    const gpus: GpuView[] = (s?.gpus ?? []).map((g) => ({
      ...g,
      project: this.attribute(e.node, g, byGpu.get(g.uuid) ?? []),
    }));
    e.view = {
      node: e.node,
      status: e.status,
      connected: e.connectionId !== null,
      lastSeen: e.lastSeen,
      lastSampleTs: s?.ts ?? null,
      gpuCollector: s?.gpuCollector ?? null,
      gpuError: s?.gpuError ?? null,
      host: s?.host ?? null,
      gpus,
    };
    return e.view;
  }
}
