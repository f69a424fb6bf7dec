/** Paths of the detail views. Node names are data: always encoded, never pasted raw. */
export function nodePath(node: string): string {
  return `/node/${encodeURIComponent(node)}`;
}

export function gpuPath(node: string, index: number): string {
  return `${nodePath(node)}/gpu/${encodeURIComponent(String(index))}`;
}
