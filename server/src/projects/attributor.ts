/**
 * Projects-file attribution: one process → one project. Precedence (first match wins):
 *   1. env          a project environment variable (`envVars`, default GPUPULSE_PROJECT, PROJECT)
 *                   whose value is a project id or listed in a project's `match.env`
 *   2. slurmAccount `match.slurmAccounts` (also SLURM_JOB_ACCOUNT from the environment)
 *   3. k8sNamespace `match.k8sNamespaces` (also POD_NAMESPACE from the environment)
 *   4. user         `match.users` (user name, else Slurm user, else `uid:<n>`)
 *   5. group        `match.groups` — the user's groups from the server's group database, in the
 *                   user's group order (primary first); the first group that a project lists wins
 *   6. gpu / node   `match.nodes`: a `node/gpuIndex` reservation, then a whole-`node` reservation
 * otherwise `unassigned`. An env value that names no project falls through to the next rules.
 */
import type { GpuProcess } from '@gpupulse/protocol';
import { type Attribution, type AttributionRule, processUser, UNASSIGNED } from '../fleet/attribution.ts';
import type { ProjectsConfig } from './projects-file.ts';
import type { GroupDb } from './unix-groups.ts';

interface Index {
  envVars: string[];
  env: Map<string, string>;
  slurm: Map<string, string>;
  k8s: Map<string, string>;
  users: Map<string, string>;
  groups: Map<string, string>;
  nodes: Map<string, string>;
}

function buildIndex(config: ProjectsConfig): Index {
  const idx: Index = {
    envVars: config.envVars,
    env: new Map(),
    slurm: new Map(),
    k8s: new Map(),
    users: new Map(),
    groups: new Map(),
    nodes: new Map(),
  };
  for (const p of config.projects.values()) idx.env.set(p.id, p.id);
  for (const p of config.projects.values()) {
    for (const v of p.match.env) idx.env.set(v, p.id);
    for (const v of p.match.slurmAccounts) idx.slurm.set(v, p.id);
    for (const v of p.match.k8sNamespaces) idx.k8s.set(v, p.id);
    for (const v of p.match.users) idx.users.set(v, p.id);
    for (const v of p.match.groups) idx.groups.set(v, p.id);
    for (const v of p.match.nodes) idx.nodes.set(v, p.id);
  }
  return idx;
}

/** Attribution over a config that may change (hot reload): reads `source()` on every call. */
export function createProjectAttribution(
  source: () => { config: ProjectsConfig; groups: GroupDb },
): Attribution {
  let cachedFor: ProjectsConfig | null = null;
  let idx: Index | null = null;
  const hit = (project: string | undefined, rule: AttributionRule) => (project ? { project, rule } : null);
  return {
    projectOf(node: string, gpu: { uuid: string; index: number }, p: GpuProcess) {
      const { config, groups } = source();
      if (config !== cachedFor || !idx) {
        idx = buildIndex(config);
        cachedFor = config;
      }
      const env = p.env;
      if (env) {
        for (const name of idx.envVars) {
          const v = env[name];
          const r = v !== undefined ? hit(idx.env.get(v), 'env') : null;
          if (r) return r;
        }
      }
      const account = p.slurmAccount ?? env?.SLURM_JOB_ACCOUNT;
      const r2 = account ? hit(idx.slurm.get(account), 'slurmAccount') : null;
      if (r2) return r2;
      const ns = p.k8sNamespace ?? env?.POD_NAMESPACE;
      const r3 = ns ? hit(idx.k8s.get(ns), 'k8sNamespace') : null;
      if (r3) return r3;
      const user = processUser(p);
      if (user) {
        const r4 = hit(idx.users.get(user), 'user');
        if (r4) return r4;
        if (idx.groups.size > 0) {
          for (const g of groups.groupsOf(user)) {
            const r5 = hit(idx.groups.get(g), 'group');
            if (r5) return r5;
          }
        }
      }
      if (idx.nodes.size > 0) {
        const r6 = hit(idx.nodes.get(`${node}/${gpu.index}`), 'gpu') ?? hit(idx.nodes.get(node), 'node');
        if (r6) return r6;
      }
      return { project: UNASSIGNED, rule: 'none' as const };
    },
  };
}
