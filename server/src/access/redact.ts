/**
 * Removal of fields by role, done by the server (the browser never receives what a role may not
 * see):
 *   display: no user names, no job names (GPU views, patches, project usage), no processes;
 *   viewer:  processes of everyone, but command lines and environment values only of their own
 *            (other users' processes carry `redacted: ['cmdline', 'env']`);
 *   admin:   everything.
 * Pure functions over fresh copies: the live state objects are never modified.
 */
import type {
  AlertsList,
  GpuPatch,
  GpuView,
  NodePatch,
  NodeView,
  ProjectsUsage,
  RedactedField,
} from '@gpupulse/protocol';
import type { ProcessDetail } from '../fleet/fleet-state.ts';
import { type Principal, type Role, roleAtLeast } from './roles.ts';

/** True when `role` gets user names, job names and processes. */
export const seesPeople = (role: Role): boolean => roleAtLeast(role, 'viewer');

function stripGpu<T extends GpuView | GpuPatch>(g: T): T {
  if (g.users === undefined && g.jobs === undefined) return g;
  const { users: _u, jobs: _j, ...rest } = g;
  return rest as T;
}

/** Node views as `role` may see them (the same array when nothing is removed). */
export function redactNodes(nodes: NodeView[], role: Role): NodeView[] {
  if (seesPeople(role)) return nodes;
  return nodes.map((n) => ({ ...n, gpus: n.gpus.map(stripGpu) }));
}

/** Delta patches as `role` may see them; a patch left with nothing to say is dropped. */
export function redactPatches(patches: NodePatch[], role: Role): NodePatch[] {
  if (seesPeople(role)) return patches;
  const out: NodePatch[] = [];
  for (const p of patches) {
    if (!p.gpus) {
      out.push(p);
      continue;
    }
    const gpus = p.gpus.map(stripGpu).filter((g) => Object.keys(g).length > 1);
    const { gpus: _g, ...top } = p;
    if (gpus.length > 0) out.push({ ...top, gpus });
    else if (Object.keys(top).length > 1) out.push(top);
  }
  return out;
}

/** Live project usage as `role` may see it: display gets no `users` / `jobs` keys at all. */
export function redactProjectsUsage(usage: ProjectsUsage, role: Role): ProjectsUsage {
  if (seesPeople(role)) return usage;
  return {
    ...usage,
    projects: usage.projects.map(
      ({ users: _u, jobs: _j, ...rest }) => rest as ProjectsUsage['projects'][number],
    ),
  };
}

export type RedactedProcess = ProcessDetail & { redacted?: RedactedField[] };

const REDACTED: RedactedField[] = ['cmdline', 'env'];

/**
 * Processes as a viewer or admin may see them (display gets none: the route answers 403). A viewer
 * keeps the command line and environment of their own processes (`user` equal to the principal's
 * Unix user); other users' processes lose both and say so in `redacted`.
 */
export function redactProcesses(processes: ProcessDetail[], principal: Principal): RedactedProcess[] {
  if (principal.role === 'admin') return processes;
  if (!seesPeople(principal.role)) return [];
  return processes.map((p) => {
    if (principal.user !== null && p.user === principal.user) return p;
    const { cmdline: _c, env: _e, ...rest } = p;
    return { ...rest, redacted: REDACTED };
  });
}

/** Alerts as `role` may see them: display does not learn who acknowledged an alert. */
export function redactAlerts(list: AlertsList, role: Role): AlertsList {
  if (seesPeople(role) || !list.alerts.some((a) => a.acknowledged?.by)) return list;
  return {
    ...list,
    alerts: list.alerts.map((a) =>
      a.acknowledged ? { ...a, acknowledged: { ...a.acknowledged, by: null } } : a,
    ),
  };
}
