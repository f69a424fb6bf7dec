import type { GpuView, NodeStatus, NodeView } from '@gpupulse/protocol';
import type {
  CustomSeriesRenderItemAPI,
  CustomSeriesRenderItemParams,
  CustomSeriesRenderItemReturn,
  PatternObject,
} from 'echarts';
import type { CustomSeriesOption } from 'echarts/charts';
import type { TooltipComponentOption } from 'echarts/components';
import type { ComposeOption } from 'echarts/core';
import { textColorOn, utilizationColor } from './color-scale.ts';
import { isHot } from './fleet-state.ts';
import type { GridLayout, GridTile } from './gpu-grid-layout.ts';

export type GpuGridOption = ComposeOption<CustomSeriesOption | TooltipComponentOption>;

/** Colours the canvas needs from the current theme. */
export interface GridPalette {
  text: string;
  mutedText: string;
  offlineStroke: string;
  hot: string;
  hotText: string;
  focus: string;
  tooltipBackground: string;
  tooltipText: string;
  tooltipBorder: string;
  status: Record<NodeStatus, string>;
}

/** Everything the tooltip and labels need, already translated and locale-formatted. */
export interface GridText {
  statusSymbol: Record<NodeStatus, string>;
  /** HTML for the tooltip of one GPU (caller escapes field data). */
  gpuTooltip: (node: NodeView, gpu: GpuView) => string;
  /** HTML for the tooltip of a node label. */
  nodeTooltip: (node: NodeView) => string;
  /** Short text in a tile for a known utilization. */
  utilText: (util: number, compact: boolean) => string;
}

export interface GpuGridOptionInput {
  layout: GridLayout;
  palette: GridPalette;
  text: GridText;
  /** Fill for unknown utilization (hatched); a plain colour where no canvas is available. */
  unknownFill: string | PatternObject;
}

export const TILE_SERIES_ID = 'gpu-tiles';
export const LABEL_SERIES_ID = 'node-labels';

/** Below this tile size (px) tiles carry colour only: text would be unreadable and costs most of the frame. */
export const MIN_TEXT_TILE = 24;
/** From this tile size (px) the GPU index is drawn too. */
export const MIN_INDEX_TILE = 36;

function tileCaption(tile: GridTile, text: GridText): string {
  if (tile.activity === 'offline') return '–';
  if (tile.gpu.state === 'error') return '!';
  if (tile.util === null) return '?';
  return text.utilText(tile.util, tile.size < MIN_INDEX_TILE);
}

function renderTile(tile: GridTile, input: GpuGridOptionInput): CustomSeriesRenderItemReturn {
  const { palette, text, unknownFill } = input;
  const s = tile.size;
  const offline = tile.activity === 'offline';
  const known = tile.util !== null;
  const fill = offline ? 'transparent' : known ? utilizationColor(tile.util) : unknownFill;
  const fg = offline ? palette.mutedText : known ? textColorOn(utilizationColor(tile.util)) : '#ffffff';
  const children: NonNullable<Extract<CustomSeriesRenderItemReturn, { type: 'group' }>['children']> = [
    {
      type: 'rect',
      shape: { x: tile.x, y: tile.y, width: s, height: s, r: s >= MIN_TEXT_TILE ? 3 : 0 },
      style: offline
        ? { fill, stroke: palette.offlineStroke, lineWidth: 1, lineDash: [3, 3] }
        : { fill, stroke: known ? undefined : palette.offlineStroke, lineWidth: 1 },
      emphasis: { style: { stroke: palette.focus, lineWidth: 3 } },
    },
  ];
  if (s >= MIN_TEXT_TILE || tile.util === null) {
    children.push({
      type: 'text',
      silent: true,
      style: {
        x: tile.x + s / 2,
        y: tile.y + (s >= MIN_INDEX_TILE ? s * 0.58 : s / 2),
        text: tileCaption(tile, text),
        fill: fg,
        align: 'center',
        verticalAlign: 'middle',
        font: `600 ${Math.max(9, Math.round(s * 0.3))}px system-ui, sans-serif`,
      },
    });
  }
  if (s >= MIN_INDEX_TILE) {
    children.push({
      type: 'text',
      silent: true,
      style: {
        x: tile.x + 4,
        y: tile.y + 3,
        text: String(tile.gpu.index),
        fill: fg,
        opacity: 0.85,
        align: 'left',
        verticalAlign: 'top',
        font: `${Math.round(s * 0.2)}px system-ui, sans-serif`,
      },
    });
  }
  if (!offline && isHot(tile.gpu)) {
    // A triangle in the top-right corner: shape, not just colour.
    const b = Math.max(6, Math.round(s * 0.32));
    children.push({
      type: 'polygon',
      silent: true,
      shape: {
        points: [
          [tile.x + s - b, tile.y],
          [tile.x + s, tile.y],
          [tile.x + s, tile.y + b],
        ],
      },
      style: { fill: palette.hot, stroke: palette.hotText, lineWidth: 1 },
    });
  }
  // A bare rect (the common case on big fleets) is far cheaper than a group.
  return children.length === 1 ? children[0]! : { type: 'group', children };
}

/** The ECharts option for the GPU grid: one custom series of tiles, one of node labels. */
export function buildGpuGridOption(input: GpuGridOptionInput): GpuGridOption {
  const { layout, palette, text } = input;
  const { tiles, labels } = layout;
  const fontSize = Math.min(13, Math.max(9, Math.round(layout.labelHeight * 0.7)));
  return {
    animation: false,
    tooltip: {
      trigger: 'item',
      confine: true,
      transitionDuration: 0,
      backgroundColor: palette.tooltipBackground,
      borderColor: palette.tooltipBorder,
      textStyle: { color: palette.tooltipText },
      formatter: (params) => {
        const p = Array.isArray(params) ? params[0] : params;
        if (!p || p.dataIndex === undefined) return '';
        if (p.seriesId === LABEL_SERIES_ID) {
          const label = labels[p.dataIndex];
          return label ? text.nodeTooltip(label.node) : '';
        }
        const tile = tiles[p.dataIndex];
        const node = tile ? labels[tile.nodeIndex]?.node : undefined;
        return tile && node ? text.gpuTooltip(node, tile.gpu) : '';
      },
    },
    series: [
      {
        id: TILE_SERIES_ID,
        type: 'custom',
        coordinateSystem: 'none',
        data: tiles.map((_, i) => i),
        renderItem: (params: CustomSeriesRenderItemParams, _api: CustomSeriesRenderItemAPI) => {
          const tile = tiles[params.dataIndex];
          return tile ? renderTile(tile, input) : null;
        },
      },
      {
        id: LABEL_SERIES_ID,
        type: 'custom',
        coordinateSystem: 'none',
        data: labels.map((_, i) => i),
        renderItem: (params: CustomSeriesRenderItemParams) => {
          const label = labels[params.dataIndex];
          if (!label) return null;
          const status = label.node.status;
          return {
            type: 'text',
            style: {
              x: label.x,
              y: label.y + layout.labelHeight / 2 - 1,
              text: `${text.statusSymbol[status]} ${label.node.node}`,
              width: label.width,
              overflow: 'truncate',
              ellipsis: '…',
              fill: status === 'online' ? palette.text : palette.status[status],
              align: 'left',
              verticalAlign: 'middle',
              font: `600 ${fontSize}px system-ui, sans-serif`,
            },
          };
        },
      },
    ],
  };
}
