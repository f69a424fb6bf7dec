import type { HistoryResponse, ProjectsMeta, UsageResponse } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { shallowRef } from 'vue';
import { type HistoryQuery, historyUrl } from '../lib/history.ts';
import { type ApiResult, api, type NodeProcesses, usageUrl } from '../services/api.ts';

const CACHE_LIMIT = 24;
const CACHE_TTL_MS = 60_000;

/**
 * The HTTP side of the detail, My work and Trends views: history, usage, per-node processes
 * and projects meta. Usage and meta answers are cached for a minute in a small bounded cache
 * (Trends re-renders, kiosk rotation comes back every few minutes); history is always fresh
 * because its range ends now.
 */
export const useHistoryStore = defineStore('history', () => {
  const cache = new Map<string, { at: number; result: ApiResult<unknown> }>();
  /** The newest history request (for the range picker's "tier" note and for tests). */
  const lastHistoryUrl = shallowRef<string | null>(null);
  const projectsMeta = shallowRef<ProjectsMeta | null>(null);

  async function cached<T>(url: string, load: () => Promise<ApiResult<T>>): Promise<ApiResult<T>> {
    const hit = cache.get(url);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.result as ApiResult<T>;
    const result = await load();
    if (result.kind !== 'error') {
      cache.delete(url);
      cache.set(url, { at: Date.now(), result });
      while (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    }
    return result;
  }

  function history(q: HistoryQuery, signal?: AbortSignal): Promise<ApiResult<HistoryResponse>> {
    const url = historyUrl(q);
    lastHistoryUrl.value = url;
    return api.history(url, signal);
  }

  function usage(q: Parameters<typeof usageUrl>[0], signal?: AbortSignal): Promise<ApiResult<UsageResponse>> {
    const url = usageUrl(q);
    return cached(url, () => api.usage(url, signal));
  }

  function processes(node: string, signal?: AbortSignal): Promise<ApiResult<NodeProcesses>> {
    return api.processes(node, signal);
  }

  async function loadProjectsMeta(): Promise<ProjectsMeta | null> {
    const r = await cached('/api/v1/projects/meta', () => api.projectsMeta());
    if (r.kind === 'ok') projectsMeta.value = r.data;
    return projectsMeta.value;
  }

  return { lastHistoryUrl, projectsMeta, history, usage, processes, loadProjectsMeta };
});
