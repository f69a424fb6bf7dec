import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';

/** Later views (projects, trends, my work) add their routes here. */
export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'cluster', component: () => import('./pages/ClusterPage.vue') },
  { path: '/:pathMatch(.*)*', redirect: '/' },
];

export function createAppRouter() {
  return createRouter({ history: createWebHistory(import.meta.env.BASE_URL), routes });
}
