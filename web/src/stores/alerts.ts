import type { Alert, AlertsList } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, triggerRef } from 'vue';
import {
  type AlertMap,
  compareAlerts,
  gpusWithErrorAlerts,
  mergeAlerts,
  replaceAlerts,
} from '../lib/alerts.ts';
import type { FeedState } from './projects.ts';

/** Firing and recently resolved alerts (bounded: see `lib/alerts.ts`). */
export const useAlertsStore = defineStore('alerts', () => {
  const byId = shallowRef<AlertMap>(new Map());
  const state = ref<FeedState>('waiting');
  const serverTime = ref<number | null>(null);

  function applySnapshot(list: AlertsList): void {
    replaceAlerts(byId.value, list.alerts);
    serverTime.value = list.serverTime;
    state.value = 'live';
    triggerRef(byId);
  }

  function applyChanged(list: AlertsList): void {
    mergeAlerts(byId.value, list.alerts);
    serverTime.value = list.serverTime;
    state.value = 'live';
    triggerRef(byId);
  }

  const sorted = computed<Alert[]>(() => [...byId.value.values()].sort(compareAlerts));
  const firing = computed(() => sorted.value.filter((a) => a.state === 'firing'));
  /** Firing count, or null while alerts are not available. */
  const firingCount = computed(() => (state.value === 'live' ? firing.value.length : null));
  const errorGpus = computed(() => gpusWithErrorAlerts(byId.value.values()));
  const rules = computed(() => [...new Set(sorted.value.map((a) => a.rule))].sort());

  return {
    byId,
    state,
    serverTime,
    sorted,
    firing,
    firingCount,
    errorGpus,
    rules,
    applySnapshot,
    applyChanged,
  };
});
