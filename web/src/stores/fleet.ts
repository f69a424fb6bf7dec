import type { FleetDelta, FleetSnapshot, NodeView, StorageInfo } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, triggerRef } from 'vue';
import {
  applyDelta as applyDeltaTo,
  applySnapshot as applySnapshotTo,
  computeHeadline,
  type NodeMap,
  sortedNodes,
} from '../lib/fleet-state.ts';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/**
 * Live fleet state. The node map sits in a `shallowRef` and is mutated in place, then
 * `triggerRef`'d once per message: no deep proxies over thousands of GPU objects. Node
 * objects are replaced (never mutated), so components can compare them by identity.
 */
export const useFleetStore = defineStore('fleet', () => {
  const nodes = shallowRef<NodeMap>(new Map());
  /** Bumped on every change to `nodes`; cheap to watch. */
  const version = ref(0);
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

  function applySnapshot(snapshot: FleetSnapshot, now = Date.now()): void {
    applySnapshotTo(nodes.value, snapshot);
    storage.value = snapshot.storage;
    intervalMs.value = snapshot.intervalMs;
    hasSnapshot.value = true;
    touch(now, snapshot.serverTime);
    version.value++;
    triggerRef(nodes);
  }

  /** Returns false when the delta patched nodes this client does not hold: resync then. */
  function applyDelta(delta: FleetDelta, now = Date.now()): boolean {
    if (delta.storage) storage.value = delta.storage;
    touch(now, delta.serverTime);
    const missing: string[] = [];
    if (applyDeltaTo(nodes.value, delta, missing)) {
      version.value++;
      triggerRef(nodes);
    }
    return missing.length === 0;
  }

  function setConnection(state: ConnectionState): void {
    connection.value = state;
  }

  let order: string[] = [];
  const nodeList = computed<NodeView[]>(() => {
    void version.value;
    const list = sortedNodes(nodes.value, order);
    if (list.length !== order.length || list.some((n, i) => n.node !== order[i]))
      order = list.map((n) => n.node);
    return list;
  });
  const headline = computed(() => computeHeadline(nodes.value.values()));

  return {
    nodes,
    version,
    connection,
    lastUpdate,
    serverTime,
    intervalMs,
    storage,
    hasSnapshot,
    nodeList,
    headline,
    applySnapshot,
    applyDelta,
    setConnection,
  };
});
