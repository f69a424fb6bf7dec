import type { NodeView } from '@gpupulse/protocol';

/**
 * The rack / partition a node belongs to, from its name: the part before the last `-NNNN`
 * (`rack-a-0012` → `rack-a`, `dgx-b07-3` → `dgx-b07`). Names without a numeric suffix: `''`.
 */
export function rackOf(name: string): string {
  let rack = cache.get(name);
  if (rack === undefined) {
    const m = /^(.+?)[-_]\d+$/.exec(name);
    rack = m ? (m[1] ?? '') : '';
    if (cache.size >= 20_000) cache.clear(); // bounded
    cache.set(name, rack);
  }
  return rack;
}
const cache = new Map<string, string>();

export interface NodeGroup {
  /** Rack / partition name (`''`: ungrouped). */
  name: string;
  nodes: NodeView[];
}

/** Groups nodes (already in display order) by rack, groups in order of first appearance. */
export function groupNodes(nodes: readonly NodeView[]): NodeGroup[] {
  const byName = new Map<string, NodeGroup>();
  const groups: NodeGroup[] = [];
  for (const node of nodes) {
    const name = rackOf(node.node);
    let g = byName.get(name);
    if (!g) {
      g = { name, nodes: [] };
      byName.set(name, g);
      groups.push(g);
    }
    g.nodes.push(node);
  }
  return groups;
}

export interface NameGroup {
  /** Rack / partition name (`''`: ungrouped). */
  name: string;
  nodes: string[];
}

/** `groupNodes` over node names (the wall lays out names; it reads the records when it draws). */
export function groupNames(names: readonly string[]): NameGroup[] {
  const byName = new Map<string, NameGroup>();
  const groups: NameGroup[] = [];
  for (const node of names) {
    const name = rackOf(node);
    let g = byName.get(name);
    if (!g) {
      g = { name, nodes: [] };
      byName.set(name, g);
      groups.push(g);
    }
    g.nodes.push(node);
  }
  return groups;
}
