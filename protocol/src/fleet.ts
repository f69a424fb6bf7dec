import type { GpuView, NodePatch, NodeView } from './schemas.ts';

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
