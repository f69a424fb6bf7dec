import type { GpuPatch, GpuView, NodePatch, NodeView } from './schemas.ts';

/**
 * Applies a `fleet:delta` patch to the node a client holds. Returns a new object (the old one is
 * left as it was, so views can compare by identity); GPUs without a patch keep their objects.
 * A patch naming a GPU index the node does not have is ignored for that GPU.
 */
export function applyNodePatch(prev: NodeView, patch: NodePatch): NodeView {
  const { gpus: gpuPatches, ...top } = patch;
  const next: NodeView = { ...prev, ...(top as Partial<NodeView>), node: prev.node };
  if (gpuPatches && gpuPatches.length > 0) {
    const gpus: GpuView[] = prev.gpus.slice();
    for (const gp of gpuPatches) {
      const i = gpus.findIndex((g) => g.index === gp.index);
      if (i >= 0) gpus[i] = { ...gpus[i]!, ...gp } as GpuView;
    }
    next.gpus = gpus;
  }
  return next;
}

/** What `encodeNodePatch` says besides a patch: send the node in full, or nothing changed. */
export type NodePatchResult = NodePatch | 'full' | 'unchanged';

/**
 * The patch that turns `prev` into `next` (what `applyNodePatch` applies): only the keys whose
 * value changed, GPUs by `index`. `'full'` when a patch cannot say it (the GPU list changed, or a
 * key went away: JSON has no way to send `undefined`), `'unchanged'` when nothing differs.
 * The server's delta encoder (server/src/socket/delta-encoder.ts) keeps what it last sent per node.
 */
export function encodeNodePatch(prev: NodeView, next: NodeView): NodePatchResult {
  if (prev.gpus.length !== next.gpus.length) return 'full';
  const top = changedKeys(prev, next, 'gpus');
  if (top === null) return 'full';
  let gpus: GpuPatch[] | undefined;
  for (let i = 0; i < next.gpus.length; i++) {
    const a = prev.gpus[i]!;
    const b = next.gpus[i]!;
    if (a.index !== b.index || a.uuid !== b.uuid) return 'full';
    const keys = changedKeys(a, b, 'index');
    if (keys === null) return 'full';
    if (keys === NONE) continue;
    if (gpus === undefined) gpus = [];
    gpus.push({ ...keys, index: b.index });
  }
  if (top === NONE && gpus === undefined) return 'unchanged';
  const patch = { ...(top === NONE ? {} : top), node: next.node } as NodePatch;
  if (gpus) patch.gpus = gpus;
  return patch;
}

const NONE: Record<string, unknown> = Object.freeze({});

/** Deep equality of JSON values (what a dashboard can tell apart). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka)
    if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** Changed keys of `next` over `prev` (NONE when none); null when a key went away. */
function changedKeys<T extends object>(prev: T, next: T, skip: string): Record<string, unknown> | null {
  const p = prev as Record<string, unknown>;
  const n = next as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k in n) {
    if (k === skip) continue;
    const v = n[k];
    if (v === undefined) {
      if (p[k] !== undefined) return null;
      continue;
    }
    if (same(p[k], v)) continue;
    if (out === undefined) out = {};
    out[k] = v;
  }
  for (const k in p) if (k !== skip && p[k] !== undefined && n[k] === undefined) return null;
  return out ?? NONE;
}
