import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';

/** Later views (projects, trends, my work) add their routes here. */
export const routes: RouteRecordRaw[] = [
  // The wall (cluster overview; `?kiosk=1&rotate=30&privacy=1` for displays), projects, alerts.
  { path: '/', name: 'cluster', component: () => import('./pages/WallPage.vue') },
  { path: '/projects', name: 'projects', component: () => import('./pages/ProjectsPage.vue') },
  { path: '/alerts', name: 'alerts', component: () => import('./pages/AlertsPage.vue') },
  // Node and GPU detail, My work, Trends (node names are encoded: see lib/history-links.ts).
  { path: '/node/:name', name: 'node', component: () => import('./pages/NodePage.vue') },
  { path: '/node/:name/gpu/:index', name: 'gpu', component: () => import('./pages/GpuPage.vue') },
  { path: '/me', name: 'my-work', component: () => import('./pages/MyWorkPage.vue') },
  { path: '/trends', name: 'trends', component: () => import('./pages/TrendsPage.vue') },
  // Reports per month or ISO week (`/reports/2026-11?institution=&lang=`); without a period, last month.
  { path: '/reports/:period?', name: 'reports', component: () => import('./pages/ReportsPage.vue') },
  { path: '/:pathMatch(.*)*', redirect: '/' },
];

export function createAppRouter() {
  return createRouter({ history: createWebHistory(import.meta.env.BASE_URL), routes });
}
