import type { ProjectInfo, ProjectsMeta, ProjectsUsage } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { UsageHistory } from '../lib/usage-history.ts';
import { projectColor } from '../lib/wall-colors.ts';

/** Where project data stands: not heard of yet, live, or the server has none of it (yet). */
export type FeedState = 'waiting' | 'live' | 'unavailable';

/**
 * Projects: who they are (`projects:meta`) and their live usage (`projects:usage`, every
 * second), with a bounded client-side history of GPUs in use per project since page load.
 */
export const useProjectsStore = defineStore('projects', () => {
  const meta = shallowRef<ProjectsMeta | null>(null);
  const usage = shallowRef<ProjectsUsage | null>(null);
  /** Client time of the last usage message. */
  const lastUsageAt = ref<number | null>(null);
  const metaState = ref<FeedState>('waiting');
  const usageState = ref<FeedState>('waiting');
  /** Bumped whenever `history` gets a point (the ring itself is not reactive). */
  const historyVersion = ref(0);
  const history = new UsageHistory();

  function setMeta(m: ProjectsMeta): void {
    meta.value = m;
    metaState.value = 'live';
  }

  function applyUsage(u: ProjectsUsage, now = Date.now()): void {
    usage.value = u;
    usageState.value = 'live';
    lastUsageAt.value = now;
    history.addUsage(u);
    historyVersion.value++;
  }

  /** Adds a point computed in the browser from the fleet (while the server sends no usage). */
  function addFleetPoint(t: number, values: Record<string, number>): void {
    history.add(t, values);
    historyVersion.value++;
  }

  function markUnavailable(which: 'meta' | 'usage'): void {
    if (which === 'meta' && metaState.value !== 'live') metaState.value = 'unavailable';
    if (which === 'usage' && usageState.value !== 'live') usageState.value = 'unavailable';
  }

  const infoById = computed(
    () => new Map<string, ProjectInfo>((meta.value?.projects ?? []).map((p) => [p.id, p])),
  );
  /** Colour per project id (the projects file's own, else a colour-blind-safe fallback). */
  const colors = computed(() => {
    const m = new Map<string, string>();
    for (const p of meta.value?.projects ?? []) m.set(p.id, projectColor(p.id, p.color));
    return m;
  });
  function colorOf(id: string): string {
    return colors.value.get(id) ?? projectColor(id, null);
  }

  return {
    meta,
    usage,
    lastUsageAt,
    metaState,
    usageState,
    history,
    historyVersion,
    infoById,
    colors,
    colorOf,
    setMeta,
    applyUsage,
    addFleetPoint,
    markUnavailable,
  };
});
