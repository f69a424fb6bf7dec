import type { GpuView, NodeView } from '@gpupulse/protocol';
import { currentUtilization, type GpuActivity, gpuActivity } from './fleet-state.ts';

/** One GPU tile on the overview canvas, in CSS pixels. */
export interface GridTile {
  x: number;
  y: number;
  size: number;
  nodeIndex: number;
  gpu: GpuView;
  activity: GpuActivity;
  /** Current, known utilization (%), else null. */
  util: number | null;
}

/** One node's label above its tiles. */
export interface GridNodeLabel {
  x: number;
  y: number;
  width: number;
  node: NodeView;
}

export interface GridLayout {
  width: number;
  height: number;
  tileSize: number;
  labelHeight: number;
  tiles: GridTile[];
  labels: GridNodeLabel[];
}

export interface GridLayoutOptions {
  /** Available width (CSS px). */
  width: number;
  /** GPU tiles per line inside a node block before wrapping (default 8). */
  maxColumns?: number;
  /** Force a tile size; default picks one from the number of GPUs. */
  tileSize?: number;
}

const GAP = 3;
const BLOCK_GAP_X = 16;
const BLOCK_GAP_Y = 10;

/** Tile size that keeps small fleets readable and lets 8,000 GPUs fit a wall display. */
export function pickTileSize(gpuCount: number): number {
  if (gpuCount <= 64) return 52;
  if (gpuCount <= 256) return 42;
  if (gpuCount <= 1024) return 32;
  if (gpuCount <= 2048) return 26;
  if (gpuCount <= 4096) return 20;
  return 14;
}

/**
 * Lays nodes out as blocks (label line + tiles), left to right then top to bottom, all blocks
 * the same width so columns line up. Pure: same input, same output.
 */
export function layoutGpuGrid(nodes: readonly NodeView[], options: GridLayoutOptions): GridLayout {
  const maxColumns = options.maxColumns ?? 8;
  let gpuCount = 0;
  let widest = 1;
  for (const n of nodes) {
    gpuCount += n.gpus.length;
    if (n.gpus.length > widest) widest = n.gpus.length;
  }
  const tileSize = options.tileSize ?? pickTileSize(gpuCount);
  const labelHeight = Math.max(14, Math.round(tileSize * 0.45));
  const columns = Math.min(maxColumns, widest);
  const pitch = tileSize + GAP;
  const blockWidth = Math.max(columns * pitch - GAP, 100);
  const width = Math.max(options.width, blockWidth);
  const blocksPerRow = Math.max(1, Math.floor((width + BLOCK_GAP_X) / (blockWidth + BLOCK_GAP_X)));

  const tiles: GridTile[] = [];
  const labels: GridNodeLabel[] = [];
  let y = 0;
  let rowHeight = 0;
  nodes.forEach((node, nodeIndex) => {
    const col = nodeIndex % blocksPerRow;
    if (col === 0 && nodeIndex > 0) {
      y += rowHeight + BLOCK_GAP_Y;
      rowHeight = 0;
    }
    const x = col * (blockWidth + BLOCK_GAP_X);
    labels.push({ x, y, width: blockWidth, node });
    const lines = Math.max(1, Math.ceil(node.gpus.length / columns));
    node.gpus.forEach((gpu, i) => {
      tiles.push({
        x: x + (i % columns) * pitch,
        y: y + labelHeight + Math.floor(i / columns) * pitch,
        size: tileSize,
        nodeIndex,
        gpu,
        activity: gpuActivity(node.status, gpu),
        util: currentUtilization(node.status, gpu),
      });
    });
    rowHeight = Math.max(rowHeight, labelHeight + lines * pitch - GAP);
  });
  const height = nodes.length === 0 ? 0 : y + rowHeight + 2;
  return { width, height, tileSize, labelHeight, tiles, labels };
}
