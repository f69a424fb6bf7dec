import type { NodeView, ProjectsMeta } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { ref, watch } from 'vue';
import type { HintGpu } from '../lib/hints.ts';
import { readStorage, writeStorage } from './preferences.ts';

export const SELECTION_KINDS = ['user', 'project', 'job'] as const;
export type SelectionKind = (typeof SELECTION_KINDS)[number];
export interface Selection {
  kind: SelectionKind;
  value: string;
}

export const MY_WORK_STORAGE_KEY = 'gpupulse.myWork';
const MAX_VALUE = 256;

type QueryValue = string | null | undefined | readonly (string | null)[];

function first(v: QueryValue): string | null {
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' ? s : null;
}

/** `?user=kim.minji` / `?project=` / `?job=` → a selection (first non-empty kind wins). */
export function selectionFromQuery(query: Record<string, QueryValue>): Selection | null {
  for (const kind of SELECTION_KINDS) {
    const value = first(query[kind])?.trim();
    if (value && value.length <= MAX_VALUE) return { kind, value };
  }
  return null;
}

export function selectionToQuery(s: Selection | null): Record<string, string> {
  return s ? { [s.kind]: s.value } : {};
}

export function parseStoredSelection(raw: string | null): Selection | null {
  if (!raw) return null;
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null) return null;
    const { kind, value } = v as Record<string, unknown>;
    if (!SELECTION_KINDS.includes(kind as SelectionKind) || typeof value !== 'string') return null;
    const trimmed = value.trim();
    return trimmed && trimmed.length <= MAX_VALUE ? { kind: kind as SelectionKind, value: trimmed } : null;
  } catch {
    return null;
  }
}

export function sameSelection(a: Selection | null, b: Selection | null): boolean {
  return a === b || (a !== null && b !== null && a.kind === b.kind && a.value === b.value);
}

/** The GPUs that belong to a selection, in node then index order. */
export function matchGpus(nodes: readonly NodeView[], s: Selection | null): HintGpu[] {
  if (!s) return [];
  const out: HintGpu[] = [];
  for (const n of nodes) {
    for (const g of n.gpus) {
      const hit =
        s.kind === 'user'
          ? (g.users ?? []).includes(s.value)
          : s.kind === 'project'
            ? g.project === s.value
            : (g.jobs ?? []).includes(s.value);
      if (hit) out.push({ node: n.node, gpu: g, nodeDown: n.status !== 'online' });
    }
  }
  return out;
}

export interface Candidate {
  kind: SelectionKind;
  value: string;
  /** Display name (a project's localized name), else the value. */
  label: string;
  gpus: number;
}

/** Every user, project and job on the fleet now (plus projects from the meta), for the typeahead. */
export function candidates(
  nodes: readonly NodeView[],
  meta: ProjectsMeta | null,
  locale: string,
): Candidate[] {
  const counts = new Map<string, Candidate>();
  const add = (kind: SelectionKind, value: string, label = value, gpu = 1) => {
    const key = `${kind}\u0000${value}`;
    const c = counts.get(key);
    if (c) c.gpus += gpu;
    else counts.set(key, { kind, value, label, gpus: gpu });
  };
  for (const n of nodes)
    for (const g of n.gpus) {
      for (const u of new Set(g.users ?? [])) add('user', u);
      for (const j of new Set(g.jobs ?? [])) add('job', j);
      if (g.project) add('project', g.project);
    }
  for (const p of meta?.projects ?? []) {
    const name = (locale === 'ko' ? (p.name.ko ?? p.name.en) : (p.name.en ?? p.name.ko)) ?? p.id;
    const c = counts.get(`project\u0000${p.id}`);
    if (c) c.label = name;
    else add('project', p.id, name, 0);
  }
  return [...counts.values()].sort(
    (a, b) =>
      SELECTION_KINDS.indexOf(a.kind) - SELECTION_KINDS.indexOf(b.kind) || a.value.localeCompare(b.value),
  );
}

/** Case-insensitive match on value or label; prefix matches first. */
export function filterCandidates(all: readonly Candidate[], text: string, limit = 12): Candidate[] {
  const q = text.trim().toLowerCase();
  if (!q) return all.slice(0, limit);
  const scored = all
    .map((c) => {
      const v = c.value.toLowerCase();
      const l = c.label.toLowerCase();
      const score = v.startsWith(q) || l.startsWith(q) ? 0 : v.includes(q) || l.includes(q) ? 1 : -1;
      return [c, score] as const;
    })
    .filter(([, s]) => s >= 0);
  scored.sort(([, a], [, b]) => a - b);
  return scored.slice(0, limit).map(([c]) => c);
}

/** The viewer's My work choice, remembered in localStorage (the page mirrors it to the URL). */
export const useMyWorkStore = defineStore('myWork', () => {
  const selection = ref<Selection | null>(parseStoredSelection(readStorage(MY_WORK_STORAGE_KEY)));
  watch(selection, (s) => writeStorage(MY_WORK_STORAGE_KEY, s ? JSON.stringify(s) : ''));
  function select(s: Selection | null): void {
    if (!sameSelection(s, selection.value)) selection.value = s;
  }
  return { selection, select };
});
