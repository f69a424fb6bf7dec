import type { ProjectInfo, ProjectsMeta, ProjectsUsage } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import { localizedName } from '../lib/project-usage.ts';
import { projectColor } from '../lib/wall-colors.ts';

/** Where project data stands: not heard of yet, or live from the server. */
export type FeedState = 'waiting' | 'live';

/**
 * Projects: who they are (`projects:meta`) and their live usage (`projects:usage`, every
 * second) — both the server's, never recomputed here. Names and colours of every view come
 * from `nameOf` / `colorOf` (the projects file's own).
 */
export const useProjectsStore = defineStore('projects', () => {
  const meta = shallowRef<ProjectsMeta | null>(null);
  const usage = shallowRef<ProjectsUsage | null>(null);
  /** Client time of the last usage message. */
  const lastUsageAt = ref<number | null>(null);
  const metaState = ref<FeedState>('waiting');
  const usageState = ref<FeedState>('waiting');

  function setMeta(m: ProjectsMeta): void {
    meta.value = m;
    metaState.value = 'live';
  }

  function applyUsage(u: ProjectsUsage, now = Date.now()): void {
    usage.value = u;
    usageState.value = 'live';
    lastUsageAt.value = now;
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
  /**
   * A project's name in the locale (the projects file's), `unassignedLabel` for `unassigned`,
   * the id for a project the file does not know.
   */
  function nameOf(id: string, locale: string, unassignedLabel: string): string {
    if (id === 'unassigned') return unassignedLabel;
    return localizedName(infoById.value.get(id)?.name, locale, id);
  }
  function institutionName(id: string, locale: string): string {
    const i = meta.value?.institutions.find((x) => x.id === id);
    return localizedName(i?.name, locale, id);
  }

  return {
    meta,
    usage,
    lastUsageAt,
    metaState,
    usageState,
    infoById,
    colors,
    colorOf,
    nameOf,
    institutionName,
    setMeta,
    applyUsage,
  };
});
