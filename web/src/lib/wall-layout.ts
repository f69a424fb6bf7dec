/**
 * Fitted wall layout: every GPU of every node in one viewport. Nodes are blocks of tiles (with a
 * label line when tiles are big enough), blocks flow left to right, each rack starts a new line
 * under its own header when there is more than one rack. The tile size is the largest that fits
 * the available width × height. Pure and allocation-light: tile positions are arithmetic on the
 * block origin, never one object per tile.
 */

export interface WallLayoutGroupInput {
  name: string;
  /** GPU count of each node in the group, in display order. */
  gpuCounts: readonly number[];
}

export interface WallLayoutOptions {
  width: number;
  height: number;
  /** Largest tile (CSS px), default 72. */
  maxTile?: number;
  /** Smallest tile (CSS px), default 3; below the fit, the layout overflows (scrolls). */
  minTile?: number;
  /** Draw rack headers (default: when there are 2 or more groups). */
  groupHeaders?: boolean;
  /**
   * Smallest text (CSS px) the wall may draw, default 11: node labels and rack headers are never
   * smaller; node labels are left out where the tiles are too small to carry them at this size.
   */
  minText?: number;
}

export interface WallGroupHeader {
  name: string;
  x: number;
  y: number;
  height: number;
}

export interface WallLayout {
  width: number;
  /** Height actually used (≤ the available height unless `overflow`). */
  height: number;
  overflow: boolean;
  tile: number;
  gap: number;
  pitch: number;
  /** Tiles per line inside a node block. */
  columns: number;
  /** Height of a node's label line (0: no labels at this size). */
  labelHeight: number;
  /** Font size (CSS px) of node labels and rack headers (≥ `minText`). */
  labelFont: number;
  headerFont: number;
  blockWidth: number;
  blockHeight: number;
  headers: WallGroupHeader[];
  /** Block origin (top-left) per node, in flattened display order. */
  blockX: Float64Array;
  blockY: Float64Array;
  /** Index of the first tile of each node in the flattened tile order (length nodes + 1). */
  tileStart: Uint32Array;
  nodeCount: number;
  tileCount: number;
}

interface Metrics {
  tile: number;
  gap: number;
  pitch: number;
  labelHeight: number;
  labelFont: number;
  headerFont: number;
  blockGapX: number;
  blockGapY: number;
  headerHeight: number;
}

/** Text scales with the tile, never below `minText`; a label line is 1.3 × its font. */
function metricsFor(tile: number, headers: boolean, minText: number): Metrics {
  const gap = Math.max(1, Math.round(tile * 0.08));
  const labelFont = Math.max(minText, Math.round(tile * 0.26));
  const headerFont = Math.max(minText, Math.round(tile * 0.34));
  // A node label only where the tiles are big enough to carry it (else the key and tooltip name them).
  const labels = tile >= 12 && labelFont <= tile * 0.8;
  return {
    tile,
    gap,
    pitch: tile + gap,
    labelHeight: labels ? Math.ceil(labelFont * 1.3) : 0,
    labelFont,
    headerFont,
    blockGapX: Math.max(3, Math.round(tile * 0.45)),
    blockGapY: Math.max(3, Math.round(tile * 0.3)),
    headerHeight: headers ? Math.ceil(headerFont * 1.3) : 0,
  };
}

function blockSize(m: Metrics, columns: number, rows: number): { w: number; h: number } {
  return { w: columns * m.pitch - m.gap, h: m.labelHeight + rows * m.pitch - m.gap };
}

/** Height the groups need at this size, or Infinity when a block is wider than the width. */
function neededHeight(
  groups: readonly WallLayoutGroupInput[],
  m: Metrics,
  columns: number,
  rows: number,
  width: number,
): number {
  const b = blockSize(m, columns, rows);
  if (b.w > width) return Number.POSITIVE_INFINITY;
  const perRow = Math.max(1, Math.floor((width + m.blockGapX) / (b.w + m.blockGapX)));
  let h = 0;
  let first = true;
  for (const g of groups) {
    if (g.gpuCounts.length === 0) continue;
    if (!first) h += m.blockGapY;
    first = false;
    const lines = Math.ceil(g.gpuCounts.length / perRow);
    h += m.headerHeight + lines * b.h + (lines - 1) * m.blockGapY;
  }
  return h;
}

export function layoutWall(groups: readonly WallLayoutGroupInput[], options: WallLayoutOptions): WallLayout {
  const width = Math.max(1, Math.floor(options.width));
  const height = Math.max(1, Math.floor(options.height));
  const maxTile = options.maxTile ?? 72;
  const minTile = options.minTile ?? 3;
  const minText = options.minText ?? 11;
  const nonEmpty = groups.filter((g) => g.gpuCounts.length > 0);
  const headers = options.groupHeaders ?? nonEmpty.length > 1;

  let nodeCount = 0;
  let tileCount = 0;
  let widest = 1;
  for (const g of nonEmpty)
    for (const c of g.gpuCounts) {
      nodeCount++;
      tileCount += c;
      if (c > widest) widest = c;
    }

  // Candidate block shapes for the widest node: 8×1, 4×2, 2×4 … (wide blocks suit wide screens).
  const columnChoices = [...new Set([widest, Math.ceil(widest / 2), Math.ceil(widest / 4)])].filter(
    (c) => c >= 1,
  );

  let best: { m: Metrics; columns: number; rows: number; h: number } | null = null;
  for (const columns of columnChoices) {
    const rows = Math.max(1, Math.ceil(widest / columns));
    // Largest tile that fits: binary search on the integer size (height grows with size).
    let lo = minTile;
    let hi = maxTile;
    let fit = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const h = neededHeight(nonEmpty, metricsFor(mid, headers, minText), columns, rows, width);
      if (h <= height) {
        fit = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const tile = fit > 0 ? fit : minTile;
    const m = metricsFor(tile, headers, minText);
    const h = neededHeight(nonEmpty, m, columns, rows, width);
    if (
      !best ||
      (fit > 0 && (best.h > height || tile > best.m.tile)) ||
      (fit < 0 && best.h > height && h < best.h)
    ) {
      best = { m, columns, rows, h };
    }
  }
  const { m, columns, rows } = best ?? { m: metricsFor(minTile, headers, minText), columns: widest, rows: 1 };
  const b = blockSize(m, columns, rows);
  const perRow = Math.max(1, Math.floor((width + m.blockGapX) / (b.w + m.blockGapX)));

  const blockX = new Float64Array(nodeCount);
  const blockY = new Float64Array(nodeCount);
  const tileStart = new Uint32Array(nodeCount + 1);
  const headerList: WallGroupHeader[] = [];
  let y = 0;
  let i = 0;
  let t = 0;
  let first = true;
  for (const g of nonEmpty) {
    if (!first) y += m.blockGapY;
    first = false;
    if (headers) {
      headerList.push({ name: g.name, x: 0, y, height: m.headerHeight });
      y += m.headerHeight;
    }
    g.gpuCounts.forEach((count, k) => {
      const col = k % perRow;
      if (col === 0 && k > 0) y += b.h + m.blockGapY;
      blockX[i] = col * (b.w + m.blockGapX);
      blockY[i] = y;
      tileStart[i] = t;
      t += count;
      i++;
    });
    y += b.h;
  }
  tileStart[nodeCount] = t;
  const used = nodeCount === 0 ? 0 : y;
  return {
    width,
    height: used,
    overflow: used > height,
    tile: m.tile,
    gap: m.gap,
    pitch: m.pitch,
    columns,
    labelHeight: m.labelHeight,
    labelFont: m.labelFont,
    headerFont: m.headerFont,
    blockWidth: b.w,
    blockHeight: b.h,
    headers: headerList,
    blockX,
    blockY,
    tileStart,
    nodeCount,
    tileCount,
  };
}

/** Top-left of GPU `position` (array position within its node) of node `nodeIndex`. */
export function tileOrigin(
  layout: WallLayout,
  nodeIndex: number,
  position: number,
): { x: number; y: number } {
  const col = position % layout.columns;
  const row = Math.floor(position / layout.columns);
  return {
    x: (layout.blockX[nodeIndex] ?? 0) + col * layout.pitch,
    y: (layout.blockY[nodeIndex] ?? 0) + layout.labelHeight + row * layout.pitch,
  };
}

export interface WallHit {
  nodeIndex: number;
  /** GPU position within the node, or -1 when the point is on the node's label. */
  position: number;
}

/**
 * What is under the point (CSS px relative to the layout origin): a tile, a node label, or null.
 * `gpuCount(nodeIndex)` says how many tiles the node has.
 */
export function hitTest(layout: WallLayout, x: number, y: number): WallHit | null {
  const { blockWidth: w, blockHeight: h } = layout;
  for (let i = 0; i < layout.nodeCount; i++) {
    const bx = layout.blockX[i] ?? 0;
    const by = layout.blockY[i] ?? 0;
    if (x < bx || x >= bx + w || y < by || y >= by + h) continue;
    const ly = y - by - layout.labelHeight;
    if (ly < 0) return { nodeIndex: i, position: -1 };
    const col = Math.floor((x - bx) / layout.pitch);
    const row = Math.floor(ly / layout.pitch);
    // In the gap between tiles: nothing.
    if (x - bx - col * layout.pitch >= layout.tile || ly - row * layout.pitch >= layout.tile) return null;
    const position = row * layout.columns + col;
    const count = (layout.tileStart[i + 1] ?? 0) - (layout.tileStart[i] ?? 0);
    return position < count ? { nodeIndex: i, position } : null;
  }
  return null;
}

/**
 * Smallest text on the wall as a fraction of the viewport height: 1 % (≈ 22 px on a 2160-px
 * display, 11 px at 1080). Every text the wall draws or lays out (canvas labels, the project key,
 * the legend, the headline) is at least this size; text that would need to be smaller is left out.
 */
export const WALL_MIN_TEXT_FRACTION = 0.01;

/** The wall's minimum text size (CSS px) for a viewport `height` px tall (never below 11 px). */
export function wallMinText(height: number): number {
  return Math.max(11, Math.ceil(height * WALL_MIN_TEXT_FRACTION));
}
