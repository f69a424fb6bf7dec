/**
 * The projects file (`GPUPULSE_PROJECTS`): YAML or JSON (JSON is read by the same YAML 1.2 parser,
 * so errors carry a line number either way). Pure: text in, config or a located error out.
 */
import type { ProjectInfo, ProjectsMeta } from '@gpupulse/protocol';
import { isMap, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';

export const UNASSIGNED_PROJECT = 'unassigned';
/** Environment variables read (in this order) when a project file does not say otherwise. */
export const DEFAULT_PROJECT_ENV_VARS = ['GPUPULSE_PROJECT', 'PROJECT'];

const id = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'is longer than 256 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'must be letters, digits, ".", "_" or "-" (starting with a letter or digit)',
  );
const value = z.string().min(1, 'must not be empty').max(256, 'is longer than 256 characters');
const values = z.array(value).default([]);
const localized = z.union([
  z
    .string()
    .min(1)
    .transform((s) => ({ en: s })),
  z.strictObject({ en: z.string().optional(), ko: z.string().optional() }),
]);
/** `node` or `node/gpuIndex`. */
const reservation = z
  .string()
  .min(1, 'must not be empty')
  .max(300)
  .regex(/^[^/]+(\/\d{1,4})?$/, 'must be "node" or "node/gpuIndex", e.g. gpu-01 or gpu-01/3');

const MatchSchema = z.strictObject({
  env: values,
  slurmAccounts: values,
  k8sNamespaces: values,
  users: values,
  groups: values,
  nodes: z.array(reservation).default([]),
});

const ProjectSchema = z.strictObject({
  id: id.refine((v) => v !== UNASSIGNED_PROJECT, `"${UNASSIGNED_PROJECT}" is reserved`),
  name: localized.optional(),
  institution: id.nullable().optional(),
  partner: id.nullable().optional(),
  area: id.nullable().optional(),
  color: z
    .string()
    .regex(/^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/, 'must be a colour like #4e79a7')
    .nullable()
    .optional(),
  owner: z.string().max(256).nullable().optional(),
  quota: z.number().nonnegative('must be ≥ 0').nullable().optional(),
  match: MatchSchema.optional(),
});

const NamedSchema = z.strictObject({ id, name: localized.optional() });

export const ProjectsFileSchema = z.strictObject({
  /** Environment variable names whose value names a project (default GPUPULSE_PROJECT, PROJECT). */
  envVars: z.array(z.string().min(1).max(128)).optional(),
  institutions: z.array(NamedSchema).default([]),
  areas: z.array(NamedSchema).default([]),
  projects: z.array(ProjectSchema).default([]),
});
export type ProjectsFile = z.infer<typeof ProjectsFileSchema>;

export interface ProjectMatch {
  env: string[];
  slurmAccounts: string[];
  k8sNamespaces: string[];
  users: string[];
  groups: string[];
  nodes: string[];
}

export interface ProjectsConfig {
  envVars: string[];
  meta: ProjectsMeta;
  /** By id, in file order. */
  projects: Map<string, ProjectInfo & { match: ProjectMatch }>;
}

export const EMPTY_PROJECTS: ProjectsConfig = {
  envVars: DEFAULT_PROJECT_ENV_VARS,
  meta: { projects: [], institutions: [], areas: [] },
  projects: new Map(),
};

export class ProjectsFileError extends Error {
  constructor(
    message: string,
    readonly line: number | null = null,
  ) {
    super(message);
    this.name = 'ProjectsFileError';
  }
}

type PathKey = string | number;

function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${k}` : k;
  return out || '(top level)';
}

/**
 * Parses and validates a projects file. Throws `ProjectsFileError` whose message names the file,
 * the line and the key path, e.g. `projects.yaml:14: projects[2].match.users[0]: must not be empty`.
 */
export function parseProjectsFile(text: string, file = 'projects file'): ProjectsConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined): number | null =>
    offset === undefined ? null : lc.linePos(offset).line;
  const fail = (message: string, line: number | null): never => {
    throw new ProjectsFileError(`${file}${line !== null ? `:${line}` : ''}: ${message}`, line);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    fail(`invalid YAML/JSON: ${e.message.split('\n')[0]}`, lineAt(e.pos[0]));
  }
  /** The line of the deepest node that exists along `path`. */
  const lineOf = (path: readonly PathKey[]): number | null => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) {
        // For a key that exists, point at its value; for a missing key, at the enclosing map.
        return lineAt(node.range[0]);
      }
    }
    return null;
  };
  const raw = doc.contents === null ? {} : doc.toJS();
  if (!isMap(doc.contents) && doc.contents !== null) fail('the top level must be a map', lineOf([]));
  const parsed = ProjectsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      path.push(issue.keys[0]!);
    }
    fail(`${formatPath(path)}: ${message}`, lineOf(path));
  }
  const f = parsed.data!;
  const seen = (kind: string, list: Array<{ id: string }>) => {
    const ids = new Set<string>();
    list.forEach((item, i) => {
      if (ids.has(item.id)) fail(`${kind}[${i}].id: duplicate id "${item.id}"`, lineOf([kind, i, 'id']));
      ids.add(item.id);
    });
    return ids;
  };
  const institutions = seen('institutions', f.institutions);
  const areas = seen('areas', f.areas);
  seen('projects', f.projects);
  // Every match value belongs to one project: two projects claiming the same account would make
  // attribution depend on file order, which nobody reads.
  const claimed = new Map<string, string>();
  f.projects.forEach((p, i) => {
    for (const [ref, set, key] of [
      [p.institution, institutions, 'institution'],
      [p.partner, institutions, 'partner'],
      [p.area, areas, 'area'],
    ] as const) {
      if (ref && !set.has(ref)) {
        const known = [...set].map((s) => `"${s}"`).join(', ') || 'none defined';
        fail(
          `projects[${i}].${key}: unknown ${key === 'area' ? 'area' : 'institution'} "${ref}" (known: ${known})`,
          lineOf(['projects', i, key]),
        );
      }
    }
    const m = p.match;
    if (!m) return;
    for (const key of ['env', 'slurmAccounts', 'k8sNamespaces', 'users', 'groups', 'nodes'] as const) {
      m[key].forEach((v, j) => {
        const k = `${key}\u0000${v}`;
        const other = claimed.get(k);
        if (other !== undefined && other !== p.id)
          fail(
            `projects[${i}].match.${key}[${j}]: "${v}" is already matched by project "${other}"`,
            lineOf(['projects', i, 'match', key, j]),
          );
        claimed.set(k, p.id);
      });
    }
  });
  const projects = new Map<string, ProjectInfo & { match: ProjectMatch }>();
  for (const p of f.projects) {
    projects.set(p.id, {
      id: p.id,
      name: p.name ?? { en: p.id },
      institution: p.institution ?? null,
      partner: p.partner ?? null,
      area: p.area ?? null,
      color: p.color ?? null,
      owner: p.owner ?? null,
      quotaGpus: p.quota ?? null,
      match: p.match ?? { env: [], slurmAccounts: [], k8sNamespaces: [], users: [], groups: [], nodes: [] },
    });
  }
  return {
    envVars: f.envVars ?? DEFAULT_PROJECT_ENV_VARS,
    projects,
    meta: {
      projects: [...projects.values()].map(({ match: _m, ...info }) => info),
      institutions: f.institutions.map((x) => ({ id: x.id, name: x.name ?? { en: x.id } })),
      areas: f.areas.map((x) => ({ id: x.id, name: x.name ?? { en: x.id } })),
    },
  };
}
