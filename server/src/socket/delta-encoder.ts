import type { GpuPatch, GpuView, NodePatch, NodeView } from '@gpupulse/protocol';

/**
 * Turns the changed nodes of a tick into a compact `fleet:delta`: each node as a patch of only
 * the keys that differ from what the previous delta sent (most GPU fields — names, UUIDs, driver,
 * clocks max, ECC mode … — do not change from one second to the next), or in full when the node
 * is new or its GPU list changed. One encoder serves every dashboard.
 *
 * A dashboard that joined (or resynced) since the previous delta holds a snapshot that may be
 * newer than what the patches are computed against; the namespace sends that dashboard alone the
 * changed nodes in full for one tick (`changed` as given here), the others keep the patches.
 */
export class DeltaEncoder {
  private readonly sent = new Map<string, NodeView>();

  encode(
    changed: readonly NodeView[],
    removed: readonly string[],
  ): { nodes: NodeView[]; patches: NodePatch[] } {
    for (const name of removed) this.sent.delete(name);
    const nodes: NodeView[] = [];
    const patches: NodePatch[] = [];
    for (const view of changed) {
      const prev = this.sent.get(view.node);
      this.sent.set(view.node, view);
      const patch = prev ? nodePatch(prev, view) : null;
      if (patch === null) nodes.push(view);
      else if (patch !== NO_CHANGE) patches.push(patch);
    }
    return { nodes, patches };
  }
}

const NO_CHANGE = { node: '' } as NodePatch;

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka)
    if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** Changed keys of `next` over `prev`; null when only a full view can say it (a key went away). */
function changedKeys<T extends object>(prev: T, next: T, skip: string): Partial<T> | null {
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const k in next) {
    if (k === skip) continue;
    const v = next[k];
    if (!same(prev[k], v)) {
      out[k] = v;
      n++;
    }
  }
  for (const k in prev) if (k !== skip && !(k in next)) return null;
  return n === 0 ? {} : (out as Partial<T>);
}

/** The patch from `prev` to `next`; null: send in full; NO_CHANGE: nothing to send. */
function nodePatch(prev: NodeView, next: NodeView): NodePatch | null {
  if (prev.gpus.length !== next.gpus.length) return null;
  const top = changedKeys(prev, next, 'gpus');
  if (top === null) return null;
  const gpus: GpuPatch[] = [];
  for (let i = 0; i < next.gpus.length; i++) {
    const a: GpuView = prev.gpus[i]!;
    const b: GpuView = next.gpus[i]!;
    if (a.index !== b.index || a.uuid !== b.uuid) return null;
    const keys = changedKeys(a, b, 'index');
    if (keys === null) return null;
    if (Object.keys(keys).length > 0) gpus.push({ ...keys, index: b.index });
  }
  if (Object.keys(top).length === 0 && gpus.length === 0) return NO_CHANGE;
  return { ...top, node: next.node, ...(gpus.length > 0 ? { gpus } : {}) };
}
