import type { AlertsList, ProjectsMeta, ProjectsUsage } from '@gpupulse/protocol';
import { onScopeDispose, watch } from 'vue';
import { usageFromFleet } from '../lib/project-usage.ts';
import { isAlertsList, isProjectsMetaBody, isProjectsUsage, readJson } from '../services/dashboard-api.ts';
import { type DashboardSocket, getDashboardSocket } from '../services/socket.ts';
import { useAlertsStore } from '../stores/alerts.ts';
import { useFleetStore } from '../stores/fleet.ts';
import { useProjectsStore } from '../stores/projects.ts';

export interface UseLiveFeedsOptions {
  socket?: DashboardSocket;
  /** How long to wait for a socket event before asking HTTP (ms, default 3,000). */
  graceMs?: number;
  /** HTTP polling while the socket sends nothing (ms, default 5,000 usage / 15,000 alerts). */
  usagePollMs?: number;
  alertsPollMs?: number;
  /** Browser-side project history points from the fleet, while the server sends no usage (ms). */
  fleetPointMs?: number;
}

/**
 * Feeds the projects and alerts stores: `projects:meta`, `projects:usage`, `alerts:snapshot`,
 * `alerts:changed` from the one socket. While a server does not send them (yet), falls back to
 * the HTTP endpoints, polled; where those are missing too, marks the data `unavailable` and the
 * views say so. Listeners and timers go away with the scope. Call once (App.vue).
 */
export function useLiveFeeds(options: UseLiveFeedsOptions = {}) {
  const socket = options.socket ?? getDashboardSocket();
  const projects = useProjectsStore();
  const alerts = useAlertsStore();
  const fleet = useFleetStore();
  const grace = options.graceMs ?? 3000;
  const usagePoll = options.usagePollMs ?? 5000;
  const alertsPoll = options.alertsPollMs ?? 15_000;
  const fleetPointMs = options.fleetPointMs ?? 5000;

  let lastSocketUsage = 0;
  let lastSocketAlerts = 0;
  let sawMeta = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const abort = new AbortController();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const onMeta = (m: ProjectsMeta) => {
    sawMeta = true;
    projects.setMeta(m);
  };
  const onUsage = (u: ProjectsUsage) => {
    lastSocketUsage = Date.now();
    projects.applyUsage(u);
  };
  const onAlertsSnapshot = (a: AlertsList) => {
    lastSocketAlerts = Date.now();
    alerts.applySnapshot(a);
  };
  const onAlertsChanged = (a: AlertsList) => {
    lastSocketAlerts = Date.now();
    alerts.applyChanged(a);
  };

  async function fetchMeta(): Promise<void> {
    if (sawMeta) return;
    const r = await readJson('/api/v1/projects/meta', isProjectsMetaBody, abort.signal);
    if (r.kind === 'ok') projects.setMeta(r.data);
    else if (r.kind === 'missing') projects.markUnavailable('meta');
  }

  async function pollUsage(): Promise<void> {
    if (Date.now() - lastSocketUsage < grace * 2) return; // the socket is delivering
    const r = await readJson('/api/v1/projects', isProjectsUsage, abort.signal);
    if (r.kind === 'ok') {
      projects.applyUsage(r.data);
      later(usagePoll, () => void pollUsage().catch(() => {}));
    } else if (r.kind === 'missing') projects.markUnavailable('usage');
    else later(usagePoll * 2, () => void pollUsage().catch(() => {}));
  }

  async function pollAlerts(): Promise<void> {
    if (Date.now() - lastSocketAlerts < alertsPoll) return;
    const r = await readJson('/api/v1/alerts', isAlertsList, abort.signal);
    if (r.kind === 'ok') {
      if (Date.now() - lastSocketAlerts >= alertsPoll) alerts.applySnapshot(r.data);
      later(alertsPoll, () => void pollAlerts().catch(() => {}));
    } else if (r.kind === 'missing') alerts.markUnavailable();
    else later(alertsPoll, () => void pollAlerts().catch(() => {}));
  }

  const onConnect = () => {
    later(grace, () => {
      void fetchMeta().catch(() => {});
      if (Date.now() - lastSocketUsage > grace) void pollUsage().catch(() => {});
      if (Date.now() - lastSocketAlerts > grace) void pollAlerts().catch(() => {});
    });
  };

  socket.on('projects:meta', onMeta);
  socket.on('projects:usage', onUsage);
  socket.on('alerts:snapshot', onAlertsSnapshot);
  socket.on('alerts:changed', onAlertsChanged);
  socket.on('connect', onConnect);
  if (socket.connected) onConnect();

  // Without server usage, the projects history is built from the fleet (bounded, every 5 s).
  let lastFleetPoint = 0;
  const stopFleetWatch = watch(
    () => fleet.version,
    () => {
      if (projects.usageState === 'live') return;
      const now = Date.now();
      if (now - lastFleetPoint < fleetPointMs) return;
      lastFleetPoint = now;
      const values: Record<string, number> = {};
      for (const u of usageFromFleet(fleet.nodes.values(), projects.meta)) values[u.project] = u.gpusInUse;
      projects.addFleetPoint(fleet.serverTime ?? now, values);
    },
  );

  onScopeDispose(() => {
    abort.abort();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    stopFleetWatch();
    socket.off('projects:meta', onMeta);
    socket.off('projects:usage', onUsage);
    socket.off('alerts:snapshot', onAlertsSnapshot);
    socket.off('alerts:changed', onAlertsChanged);
    socket.off('connect', onConnect);
  });
}
