import { onScopeDispose, type Ref, shallowRef, watch } from 'vue';
import type { NodeProcess } from '../services/api.ts';
import { useHistoryStore } from '../stores/history.ts';

/** `forbidden`: the server shows processes only to signed-in viewers and admins (401/403). */
export type ProcessesStatus = 'loading' | 'ok' | 'missing' | 'forbidden' | 'error';

export interface UseNodeProcessesOptions {
  node: Readonly<Ref<string>>;
  /** Poll period (default 5 s); a 404 stops polling (the endpoint is missing). */
  intervalMs?: number;
}

/** The node's GPU processes from `GET /api/v1/nodes/:name/processes`, refreshed while mounted. */
export function useNodeProcesses(o: UseNodeProcessesOptions) {
  const api = useHistoryStore();
  const status = shallowRef<ProcessesStatus>('loading');
  const processes = shallowRef<NodeProcess[]>([]);
  const errorMessage = shallowRef<string | null>(null);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let controller: AbortController | null = null;

  async function poll(): Promise<void> {
    controller?.abort();
    const c = new AbortController();
    controller = c;
    try {
      const r = await api.processes(o.node.value, c.signal);
      if (r.kind === 'ok') {
        processes.value = r.data.processes.slice(0, 2048);
        status.value = 'ok';
      } else if (r.kind === 'missing') {
        status.value = 'missing';
        return;
      } else if (r.status === 401 || r.status === 403) {
        processes.value = [];
        status.value = 'forbidden';
        return;
      } else {
        errorMessage.value = r.message;
        if (status.value !== 'ok') status.value = 'error';
      }
    } catch {
      return; // aborted
    }
    timer = setTimeout(() => void poll(), o.intervalMs ?? 5000);
  }

  watch(
    o.node,
    () => {
      if (timer) clearTimeout(timer);
      status.value = 'loading';
      processes.value = [];
      void poll();
    },
    { immediate: true },
  );

  onScopeDispose(() => {
    if (timer) clearTimeout(timer);
    controller?.abort();
  });

  return { status, processes, errorMessage };
}
