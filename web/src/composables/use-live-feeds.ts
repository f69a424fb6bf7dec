import type { AlertsList, ProjectsMeta, ProjectsUsage } from '@gpupulse/protocol';
import { onScopeDispose } from 'vue';
import { type DashboardSocket, getDashboardSocket } from '../services/socket.ts';
import { useAlertsStore } from '../stores/alerts.ts';
import { useProjectsStore } from '../stores/projects.ts';

export interface UseLiveFeedsOptions {
  socket?: DashboardSocket;
}

/**
 * Feeds the projects and alerts stores from the one dashboard socket: the server sends
 * `projects:meta`, the latest `projects:usage` and `alerts:snapshot` on every connect, then
 * `projects:usage` every second and `alerts:changed` as alerts change. The server ships with
 * this dashboard, so there is no HTTP polling and nothing is recomputed in the browser: every
 * figure the views show is the server's. Listeners go away with the scope. Call once (App.vue).
 */
export function useLiveFeeds(options: UseLiveFeedsOptions = {}) {
  const socket = options.socket ?? getDashboardSocket();
  const projects = useProjectsStore();
  const alerts = useAlertsStore();

  const onMeta = (m: ProjectsMeta) => projects.setMeta(m);
  const onUsage = (u: ProjectsUsage) => projects.applyUsage(u);
  const onAlertsSnapshot = (a: AlertsList) => alerts.applySnapshot(a);
  const onAlertsChanged = (a: AlertsList) => alerts.applyChanged(a);

  socket.on('projects:meta', onMeta);
  socket.on('projects:usage', onUsage);
  socket.on('alerts:snapshot', onAlertsSnapshot);
  socket.on('alerts:changed', onAlertsChanged);

  onScopeDispose(() => {
    socket.off('projects:meta', onMeta);
    socket.off('projects:usage', onUsage);
    socket.off('alerts:snapshot', onAlertsSnapshot);
    socket.off('alerts:changed', onAlertsChanged);
  });
}
