import type { FleetDelta, FleetSnapshot, NodeView, StorageInfo } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { computed, markRaw, ref, shallowRef, triggerRef } from 'vue';
import { computeHeadline, FleetRecords, NodeViews, nodeOrder } from '../lib/fleet-state.ts';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/**
 * Live fleet state: a flat store of mutable node records (`FleetRecords`) that deltas patch in
 * place — no new node or GPU objects per delta — outside Vue's reactivity (`markRaw`); Vue only
 * sees `version` (one tick per change) and `membership` (nodes came or went). Views subscribe to
 * what they draw: the wall reads `records` and redraws the tiles whose node revision changed;
 * views that compare nodes by identity read `nodes` / `nodeList`, whose node objects are
 * immutable copies made lazily (only those read) and kept while the node does not change.
 */
export const useFleetStore = defineStore('fleet', () => {
  const records = markRaw(new FleetRecords());
  const views = markRaw(new NodeViews(records));
  const nodes = shallowRef<NodeViews>(views);
  /** Bumped on every change to the fleet; cheap to watch. */
  const version = ref(0);
  /** Bumped when nodes come or go (or change their GPU count). */
  const membership = ref(0);
  const connection = ref<ConnectionState>('connecting');
  /** Client time (ms) of the last snapshot or delta, heartbeats included; null before the first. */
  const lastUpdate = ref<number | null>(null);
  /** Server time of the last snapshot or delta. */
  const serverTime = ref<number | null>(null);
  const intervalMs = ref<number | null>(null);
  const storage = shallowRef<StorageInfo | null>(null);
  /** True once a snapshot has arrived (on this connection or an earlier one). */
  const hasSnapshot = ref(false);

  function touch(now: number, time: number): void {
    lastUpdate.value = now;
    serverTime.value = time;
  }

  function changed(): void {
    version.value++;
    if (membership.value !== records.membership) membership.value = records.membership;
    triggerRef(nodes);
  }

  function applySnapshot(snapshot: FleetSnapshot, now = Date.now()): void {
    records.applySnapshot(snapshot);
    storage.value = snapshot.storage;
    intervalMs.value = snapshot.intervalMs;
    hasSnapshot.value = true;
    touch(now, snapshot.serverTime);
    changed();
  }

  /** Returns false when the delta patched nodes this client does not hold: resync then. */
  function applyDelta(delta: FleetDelta, now = Date.now()): boolean {
    if (delta.storage) storage.value = delta.storage;
    touch(now, delta.serverTime);
    const missing: string[] = [];
    if (records.applyDelta(delta, missing)) changed();
    return missing.length === 0;
  }

  function setConnection(state: ConnectionState): void {
    connection.value = state;
  }

  /** Node names in natural order; re-sorted only when nodes come or go. */
  const nodeNames = computed<readonly string[]>((previous) => {
    void membership.value;
    return nodeOrder(records.records.keys(), previous);
  });
  /**
   * Nodes in natural order, as immutable views. Indexing is lazy: a list that renders 40 rows of
   * 1,000 copies 40 nodes (a new array object per change, so views that take it as a prop update).
   */
  const nodeList = computed<readonly NodeView[]>(() => {
    void version.value;
    return lazyViews(nodeNames.value, records);
  });
  const headline = computed(() => {
    void version.value;
    return computeHeadline(records.records.values());
  });

  // The render benchmark (test/bench/render-bench.ts, BENCH_REPLAY) feeds a synthetic fleet
  // through the same two functions the socket feed calls; only when it asked before the app loaded.
  if (typeof window !== 'undefined' && (window as unknown as { __gpupulseBench?: boolean }).__gpupulseBench)
    (window as unknown as { __gpupulseFleet?: unknown }).__gpupulseFleet = { applySnapshot, applyDelta };

  return {
    records,
    nodes,
    version,
    membership,
    connection,
    lastUpdate,
    serverTime,
    intervalMs,
    storage,
    hasSnapshot,
    nodeNames,
    nodeList,
    headline,
    applySnapshot,
    applyDelta,
    setConnection,
  };
});

/** An array of `names.length` node views whose elements are made on access (`records.view`). */
function lazyViews(names: readonly string[], records: FleetRecords): readonly NodeView[] {
  return new Proxy(names as unknown as NodeView[], {
    get(target, key, receiver) {
      if (typeof key === 'string') {
        const c = key.charCodeAt(0);
        if (c >= 48 && c <= 57) {
          const name = (target as unknown as string[])[Number(key)];
          return name === undefined ? undefined : records.view(name);
        }
      }
      return Reflect.get(target, key, receiver);
    },
  });
}
