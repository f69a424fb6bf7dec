import { encodeNodePatch, type NodePatch, type NodeView } from '@gpupulse/protocol';

/**
 * Turns the changed nodes of a tick into a compact `fleet:delta`: each node as a patch of only
 * the keys that differ from what the previous delta sent (most GPU fields — names, UUIDs, driver,
 * clocks max, ECC mode … — do not change from one second to the next), or in full when the node
 * is new or its GPU list changed (the patch itself: `encodeNodePatch` in protocol/src/fleet.ts,
 * beside the dashboards' `applyNodePatch`). One encoder serves every dashboard.
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
      const patch = prev ? encodeNodePatch(prev, view) : 'full';
      if (patch === 'full') nodes.push(view);
      else if (patch !== 'unchanged') patches.push(patch);
    }
    return { nodes, patches };
  }
}
