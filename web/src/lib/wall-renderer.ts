import type { NodeStatus, NodeView } from '@gpupulse/protocol';
import { textColorOn } from './color-scale.ts';
import { currentUtilization } from './fleet-state.ts';
import { BADGE, gpuBadges } from './gpu-badges.ts';
import {
  type ColorMode,
  FILL_OFFLINE,
  FILL_STALE,
  FILL_UNKNOWN,
  fillBin,
  projectColor,
  TEMPERATURE_LUT,
  UTILIZATION_LUT,
} from './wall-colors.ts';
import type { WallLayout } from './wall-layout.ts';

/** Canvas colours of one theme. */
export interface WallPalette {
  surface: string;
  text: string;
  mutedText: string;
  offlineStroke: string;
  hot: string;
  badgeStroke: string;
  throttle: string;
  error: string;
  errorUnderlay: string;
  ringLight: string;
  ringDark: string;
  focus: string;
  hatchBackground: string;
  hatchLine: string;
  status: Record<NodeStatus, string>;
}

const STATUS_CODE: Record<NodeStatus, number> = { online: 1, stale: 2, offline: 3 };
const STATUS_SYMBOL: Record<NodeStatus, string> = { online: '●', stale: '▲', offline: '✕' };
/** Tiles from this size (CSS px) carry their value as text. */
export const MIN_TEXT_TILE = 30;

const UTIL_TEXT = UTILIZATION_LUT.map((c) => textColorOn(c));
const TEMP_TEXT = TEMPERATURE_LUT.map((c) => textColorOn(c));

/** Font sizes (CSS px) the last full draw used, 0 for text it did not draw (checked by the browser tests). */
export interface WallFonts {
  header: number;
  label: number;
  value: number;
  state: number;
  band: number;
}

export interface WallDrawStats {
  /** Tiles redrawn by the last update. */
  tiles: number;
  labels: number;
  full: boolean;
}

/**
 * Draws the wall into ONE canvas. Per-tile state lives in typed arrays (fill bin, project band,
 * badge bits, shown value); an update encodes the new state, compares, and redraws only tiles
 * whose encoding changed. No per-tile objects, no per-update allocation beyond the arrays
 * (re-created only when the layout changes).
 */
export class WallRenderer {
  private ctx: CanvasRenderingContext2D;
  private layout: WallLayout | null = null;
  private palette: WallPalette;
  private mode: ColorMode = 'utilization';
  private dpr = 1;
  private hatch: CanvasPattern | string;
  private offlineHatch: CanvasPattern | string;
  private staleHatch: CanvasPattern | string;
  private fill = new Uint8Array(0);
  private band = new Uint16Array(0);
  private badges = new Uint8Array(0);
  private shown = new Int16Array(0);
  private nodeStatus = new Uint8Array(0);
  /** Per node: the store revision last encoded (-1: encode on the next update). */
  private drawnRev = new Float64Array(0);
  private encodeAll = true;
  /** Scratch for one update: dirty tile indices, their origins, and a bucket order. */
  private dirty = new Int32Array(0);
  private dx = new Float32Array(0);
  private dy = new Float32Array(0);
  private order = new Int32Array(0);
  private bucketCounts = new Uint32Array(0);
  private needsFull = true;
  private projectCodes = new Map<string, number>();
  private bandColors: string[] = [''];
  private bandText: string[] = [''];
  private bandNames: string[] = [''];
  private ownColors: ReadonlyMap<string, string> = new Map();
  private ownNames: ReadonlyMap<string, string> = new Map();
  /** Fitted (whole words + …) band names per code, for the current tile width. */
  private fitted = new Map<number, string>();
  /** Smallest text (CSS px) drawn; smaller text is left out (tile colours, the key and the tooltip remain). */
  private minText = 11;
  /** Words on offline and stale tiles, already localized. */
  private stateWords = { offline: 'OFFLINE', stale: 'STALE' };
  readonly fonts: WallFonts = { header: 0, label: 0, value: 0, state: 0, band: 0 };
  private focus = -1;
  nodes: readonly NodeView[] = [];
  /** For text inside big tiles: the number, already localized. */
  formatValue: (value: number, mode: ColorMode) => string = (v) => String(Math.round(v));

  constructor(
    private readonly canvas: HTMLCanvasElement,
    palette: WallPalette,
  ) {
    const ctx = canvas.getContext('2d', { alpha: false });
    if (!ctx) throw new Error('2D canvas is not available');
    this.ctx = ctx;
    this.palette = palette;
    this.hatch = this.makeHatch();
    this.offlineHatch = this.makeStripes(palette.status.offline, '#000000');
    this.staleHatch = this.makeStripes(palette.status.stale, '#000000');
  }

  /** Smallest text size (CSS px) the wall may draw. */
  setMinText(px: number): void {
    if (px !== this.minText) {
      this.minText = px;
      this.fitted.clear();
      this.needsFull = true;
    }
  }

  /** The words written on offline and stale tiles (localized). */
  setStateWords(words: { offline: string; stale: string }): void {
    this.stateWords = words;
    this.needsFull = true;
  }

  setSize(cssWidth: number, cssHeight: number, dpr: number): void {
    const w = Math.max(1, Math.round(cssWidth * dpr));
    const h = Math.max(1, Math.round(cssHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h || this.dpr !== dpr) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.canvas.style.width = `${cssWidth}px`;
      this.canvas.style.height = `${cssHeight}px`;
      this.dpr = dpr;
      this.needsFull = true;
    }
  }

  setLayout(layout: WallLayout): void {
    this.layout = layout;
    if (this.fill.length !== layout.tileCount) {
      this.fill = new Uint8Array(layout.tileCount);
      this.band = new Uint16Array(layout.tileCount);
      this.badges = new Uint8Array(layout.tileCount);
      this.shown = new Int16Array(layout.tileCount);
      this.dirty = new Int32Array(layout.tileCount);
      this.dx = new Float32Array(layout.tileCount);
      this.dy = new Float32Array(layout.tileCount);
      this.order = new Int32Array(layout.tileCount);
    }
    if (this.nodeStatus.length !== layout.nodeCount) this.nodeStatus = new Uint8Array(layout.nodeCount);
    if (this.drawnRev.length !== layout.nodeCount) this.drawnRev = new Float64Array(layout.nodeCount);
    if (this.focus >= layout.tileCount) this.focus = -1;
    this.fitted.clear();
    this.needsFull = true;
  }

  setPalette(palette: WallPalette): void {
    this.palette = palette;
    this.hatch = this.makeHatch();
    this.offlineHatch = this.makeStripes(palette.status.offline, '#000000');
    this.staleHatch = this.makeStripes(palette.status.stale, '#000000');
    this.needsFull = true;
  }

  setMode(mode: ColorMode): void {
    if (mode !== this.mode) {
      this.mode = mode;
      this.needsFull = true;
    }
  }

  /** Project colours (id → `#rrggbb`) and display names (id → name) from the projects file. */
  setProjects(colors: ReadonlyMap<string, string>, names: ReadonlyMap<string, string>): void {
    this.ownColors = colors;
    this.ownNames = names;
    this.projectCodes.clear();
    this.bandColors = [''];
    this.bandText = [''];
    this.bandNames = [''];
    this.fitted.clear();
    this.needsFull = true;
  }

  /** Re-encode every node on the next update (inputs other than the nodes changed, e.g. alerts). */
  reencode(): void {
    this.encodeAll = true;
  }

  /** Full redraw on the next update (e.g. the locale changed the tile text). */
  invalidate(): void {
    this.needsFull = true;
  }

  setFocus(tile: number): void {
    if (tile === this.focus) return;
    const old = this.focus;
    this.focus = tile;
    const l = this.layout;
    if (!l || this.needsFull) return;
    this.withTransform(() => {
      if (old >= 0) this.redrawTileAt(old);
      if (tile >= 0) this.redrawTileAt(tile);
    });
  }

  private bandCode(project: string | null): number {
    if (project === null) return 0;
    let code = this.projectCodes.get(project);
    if (code === undefined) {
      // Bounded by the number of projects the server names; past 4,000 they share one colour.
      if (this.bandColors.length >= 4096) return 1;
      code = this.bandColors.length;
      const color = projectColor(project, this.ownColors.get(project));
      this.bandColors.push(color);
      this.bandText.push(textColorOn(color));
      this.bandNames.push(this.ownNames.get(project) ?? project);
      this.projectCodes.set(project, code);
    }
    return code;
  }

  /**
   * Encodes the nodes (in layout order) and redraws what changed. `errorGpus`: `node/index` keys
   * with a firing hardware-error alert. `revision(i)`: the store's revision of node i — nodes
   * whose revision did not move since they were last encoded are skipped (patched in place, the
   * records themselves cannot tell).
   */
  update(
    nodes: readonly NodeView[],
    errorGpus: ReadonlySet<string> | null,
    revision?: (nodeIndex: number) => number,
  ): WallDrawStats {
    this.nodes = nodes;
    const l = this.layout;
    const stats: WallDrawStats = { tiles: 0, labels: 0, full: this.needsFull };
    if (!l) return stats;
    const full = this.needsFull;
    this.needsFull = false;
    const all = full || this.encodeAll || revision === undefined;
    this.encodeAll = false;
    const { fill, band, badges, shown, nodeStatus, mode, drawnRev } = this;
    this.withTransform(() => {
      const ctx = this.ctx;
      if (full) {
        ctx.fillStyle = this.palette.surface;
        ctx.fillRect(0, 0, this.canvas.width / this.dpr, this.canvas.height / this.dpr);
        this.fonts.header = 0;
        this.fonts.label = 0;
        this.fonts.value = 0;
        this.fonts.state = 0;
        this.fonts.band = 0;
        this.drawHeaders();
      }
      const n = Math.min(nodes.length, l.nodeCount);
      // Small tiles carry no text: their colour bin is all that shows, so 2 % steps suffice
      // (half the redraws of 1 % steps on a jittery fleet, no visible difference).
      const textTiles = this.valueFont() > 0;
      const step = textTiles ? 1 : 2;
      const { dirty, dx, dy } = this;
      let nd = 0;
      for (let i = 0; i < n; i++) {
        const node = nodes[i]!;
        if (revision) {
          const rev = revision(i);
          if (!all && drawnRev[i] === rev) continue;
          drawnRev[i] = rev;
        }
        const sc = STATUS_CODE[node.status];
        if (full || nodeStatus[i] !== sc) {
          nodeStatus[i] = sc;
          this.drawLabel(i, node);
          stats.labels++;
        }
        const start = l.tileStart[i] ?? 0;
        const count = Math.min(node.gpus.length, (l.tileStart[i + 1] ?? 0) - start);
        const bx = l.blockX[i] ?? 0;
        const by = (l.blockY[i] ?? 0) + l.labelHeight;
        const offline = node.status === 'offline';
        for (let j = 0; j < count; j++) {
          const gpu = node.gpus[j]!;
          const t = start + j;
          const util = currentUtilization(node.status, gpu);
          const value =
            mode === 'utilization' ? util : node.status === 'online' ? gpu.temperatureCelsius : null;
          const err = errorGpus !== null && errorGpus.size > 0 && errorGpus.has(`${node.node}/${gpu.index}`);
          const bits = gpuBadges(node.status, gpu, err);
          let f = offline ? FILL_OFFLINE : bits & BADGE.stale ? FILL_STALE : fillBin(mode, value);
          if (step === 2 && f <= 100) f = Math.min(100, (f + 1) & ~1);
          const b = offline ? 0 : this.bandCode(gpu.project);
          const v = textTiles && value !== null ? Math.round(value) : -1;
          if (full || fill[t] !== f || band[t] !== b || badges[t] !== bits || shown[t] !== v) {
            fill[t] = f;
            band[t] = b;
            badges[t] = bits;
            shown[t] = v;
            dirty[nd] = t;
            dx[nd] = bx + (j % l.columns) * l.pitch;
            dy[nd] = by + Math.floor(j / l.columns) * l.pitch;
            nd++;
          }
        }
      }
      this.drawDirty(nd);
      stats.tiles = nd;
    });
    return stats;
  }

  /**
   * Draws the `nd` dirty tiles in batches: one path and one fill per colour (bins, hatch, project
   * bands), then the rare per-tile extras (offline outline, badges, text, focus).
   */
  private drawDirty(nd: number): void {
    if (nd === 0) return;
    const l = this.layout!;
    const ctx = this.ctx;
    const p = this.palette;
    const s = l.tile;
    const { dirty, dx, dy, fill, band, badges, order } = this;
    const lut = this.mode === 'utilization' ? UTILIZATION_LUT : TEMPERATURE_LUT;

    // Bucket the dirty tiles by fill code (counting sort, no allocation).
    const counts = this.bucket(nd, 256, (k) => fill[dirty[k]!]!);
    let at = 0;
    for (let code = 0; code < 256; code++) {
      const c = counts[code]!;
      if (c === 0) continue;
      if (code === FILL_OFFLINE || code === FILL_STALE) {
        // The states ops must see first: bright stripes and a bright outline in the status colour.
        const offline = code === FILL_OFFLINE;
        ctx.fillStyle = offline ? this.offlineHatch : this.staleHatch;
        ctx.beginPath();
        for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]!, dy[order[k]!]!, s, s);
        ctx.fill();
        const w = this.outlineWidth();
        ctx.strokeStyle = offline ? p.status.offline : p.status.stale;
        ctx.lineWidth = w;
        ctx.beginPath();
        for (let k = at; k < at + c; k++)
          ctx.rect(dx[order[k]!]! + w / 2, dy[order[k]!]! + w / 2, s - w, s - w);
        ctx.stroke();
      } else {
        ctx.fillStyle = code === FILL_UNKNOWN ? this.hatch : (lut[code] ?? p.surface);
        ctx.beginPath();
        for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]!, dy[order[k]!]!, s, s);
        ctx.fill();
      }
      at += c;
    }

    // Project bands, bucketed by band code.
    const bh = this.bandHeight();
    const nb = this.bandColors.length;
    const bandCounts = this.bucket(nd, nb, (k) => band[dirty[k]!]!);
    at = bandCounts[0]!;
    for (let code = 1; code < nb; code++) {
      const c = bandCounts[code]!;
      if (c === 0) continue;
      ctx.fillStyle = this.bandColors[code] ?? p.mutedText;
      ctx.beginPath();
      for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]!, dy[order[k]!]! + s - bh, s, bh);
      ctx.fill();
      if (s >= 10) {
        ctx.fillStyle = p.surface;
        ctx.beginPath();
        for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]!, dy[order[k]!]! + s - bh - 1, s, 1);
        ctx.fill();
      }
      at += c;
    }

    // Per-tile extras: badges, text, focus (rare on big fleets; text only on big tiles).
    const text = this.valueFont() > 0 || this.symbolFont() > 0;
    for (let k = 0; k < nd; k++) {
      const t = dirty[k]!;
      if (badges[t] === 0 && t !== this.focus && !text) continue;
      this.drawExtras(dx[k]!, dy[k]!, t);
    }
  }

  /** Band height: 20 % of the tile, or tall enough for a project name where the tile can carry one. */
  private bandHeight(): number {
    const s = this.layout?.tile ?? 0;
    const named = Math.ceil(this.minText * 1.35);
    return s >= named * 3.2 ? Math.max(named, Math.round(s * 0.22)) : Math.max(2, Math.round(s * 0.2));
  }

  /** Font of the project name in the band (0: the band is too small to carry one). */
  private bandFont(): number {
    const s = this.layout?.tile ?? 0;
    const bh = this.bandHeight();
    const font = Math.floor(bh / 1.35);
    return font >= this.minText && s >= 40 ? font : 0;
  }

  /** Font of the value inside a tile (0: too small for text at the minimum size). */
  private valueFont(): number {
    const s = this.layout?.tile ?? 0;
    const font = Math.round(s * 0.3);
    return s >= MIN_TEXT_TILE && font >= this.minText ? font : 0;
  }

  /** Font of the single symbol (✕, ▲, ?) on tiles too small for words (0: none). */
  private symbolFont(): number {
    const s = this.layout?.tile ?? 0;
    const font = Math.round(s * 0.6);
    return s >= 12 && font >= this.minText ? font : 0;
  }

  private outlineWidth(): number {
    const s = this.layout?.tile ?? 0;
    return s >= 8 ? Math.max(1.5, Math.min(6, Math.round(s * 0.06))) : 1;
  }

  /** The longest run of whole words of `text` that fits `width` at the current font, `…` if cut. */
  private fit(text: string, width: number): string {
    const ctx = this.ctx;
    if (ctx.measureText(text).width <= width) return text;
    const words = text.split(/\s+/);
    for (let n = words.length - 1; n >= 1; n--) {
      const t = `${words.slice(0, n).join(' ')}…`;
      if (ctx.measureText(t).width <= width) return t;
    }
    return '';
  }

  /** Counting sort of dirty positions 0…nd-1 by `key` into `order`; returns the counts per key. */
  private bucket(nd: number, keys: number, key: (k: number) => number): Uint32Array {
    if (this.bucketCounts.length < keys + 1) this.bucketCounts = new Uint32Array(Math.max(keys + 1, 260));
    const counts = this.bucketCounts;
    counts.fill(0, 0, keys + 1);
    for (let k = 0; k < nd; k++) counts[key(k)]!++;
    // Start offsets in counts[keys]… computed on the fly: place with a running cursor.
    let sum = 0;
    const starts = this.starts(keys);
    for (let c = 0; c < keys; c++) {
      starts[c] = sum;
      sum += counts[c]!;
    }
    for (let k = 0; k < nd; k++) {
      const c = key(k);
      this.order[starts[c]!++] = k;
    }
    return counts;
  }

  private startsBuf = new Uint32Array(0);
  private starts(keys: number): Uint32Array {
    if (this.startsBuf.length < keys) this.startsBuf = new Uint32Array(Math.max(keys, 260));
    return this.startsBuf;
  }

  private withTransform(draw: () => void): void {
    this.ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    draw();
  }

  private redrawTileAt(t: number): void {
    const l = this.layout;
    if (!l) return;
    // Node of tile t: binary search on tileStart.
    let lo = 0;
    let hi = l.nodeCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((l.tileStart[mid] ?? 0) <= t) lo = mid;
      else hi = mid - 1;
    }
    this.drawTile(lo, t - (l.tileStart[lo] ?? 0), t);
  }

  private drawHeaders(): void {
    const l = this.layout;
    if (!l) return;
    const ctx = this.ctx;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    for (const h of l.headers) {
      if (!h.name) continue;
      ctx.fillStyle = this.palette.mutedText;
      ctx.font = `700 ${l.headerFont}px system-ui, sans-serif`;
      ctx.fillText(h.name, h.x, h.y + h.height / 2);
      this.fonts.header = l.headerFont;
    }
  }

  private drawLabel(i: number, node: NodeView): void {
    const l = this.layout;
    if (!l || l.labelHeight === 0) return;
    const ctx = this.ctx;
    const x = l.blockX[i] ?? 0;
    const y = l.blockY[i] ?? 0;
    ctx.fillStyle = this.palette.surface;
    ctx.fillRect(x, y, l.blockWidth, l.labelHeight);
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, y, l.blockWidth, l.labelHeight);
    ctx.clip();
    ctx.fillStyle = node.status === 'online' ? this.palette.text : this.palette.status[node.status];
    ctx.font = `${node.status === 'online' ? 600 : 800} ${l.labelFont}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    ctx.fillText(`${STATUS_SYMBOL[node.status]} ${node.node}`, x, y + l.labelHeight / 2);
    ctx.restore();
    this.fonts.label = l.labelFont;
  }

  /** Redraws one tile completely (focus changes). */
  private drawTile(i: number, j: number, t: number): void {
    const l = this.layout!;
    const ctx = this.ctx;
    const p = this.palette;
    const s = l.tile;
    const x = (l.blockX[i] ?? 0) + (j % l.columns) * l.pitch;
    const y = (l.blockY[i] ?? 0) + l.labelHeight + Math.floor(j / l.columns) * l.pitch;
    const f = this.fill[t]!;
    const lut = this.mode === 'utilization' ? UTILIZATION_LUT : TEMPERATURE_LUT;
    ctx.fillStyle = p.surface;
    ctx.fillRect(x, y, s, s);
    if (f === FILL_OFFLINE || f === FILL_STALE) {
      ctx.fillStyle = f === FILL_OFFLINE ? this.offlineHatch : this.staleHatch;
      ctx.fillRect(x, y, s, s);
      const w = this.outlineWidth();
      ctx.strokeStyle = f === FILL_OFFLINE ? p.status.offline : p.status.stale;
      ctx.lineWidth = w;
      ctx.strokeRect(x + w / 2, y + w / 2, s - w, s - w);
    } else {
      ctx.fillStyle = f === FILL_UNKNOWN ? this.hatch : (lut[f] ?? p.surface);
      ctx.fillRect(x, y, s, s);
    }
    const b = this.band[t]!;
    if (b > 0) {
      const bh = this.bandHeight();
      ctx.fillStyle = this.bandColors[b] ?? p.mutedText;
      ctx.fillRect(x, y + s - bh, s, bh);
      if (s >= 10) {
        ctx.fillStyle = p.surface;
        ctx.fillRect(x, y + s - bh - 1, s, 1);
      }
    }
    this.drawExtras(x, y, t);
  }

  /** Badges, text and focus ring of one tile, over its body. */
  private drawExtras(x: number, y: number, t: number): void {
    const l = this.layout!;
    const ctx = this.ctx;
    const p = this.palette;
    const s = l.tile;
    const f = this.fill[t]!;
    const bits = this.badges[t]!;
    if (bits & BADGE.error) {
      const w = Math.max(1.5, s * 0.12);
      ctx.lineCap = 'round';
      ctx.strokeStyle = p.errorUnderlay;
      ctx.lineWidth = w + 2;
      this.cross(x, y, s);
      ctx.strokeStyle = p.error;
      ctx.lineWidth = w;
      this.cross(x, y, s);
    }
    const corner = Math.max(4, Math.round(s * 0.4));
    if (bits & BADGE.hot) this.triangle(x + s, y, -corner, corner, p.hot, s >= 10);
    if (bits & BADGE.throttle) this.triangle(x, y, corner, corner, p.throttle, s >= 10);
    if (bits & BADGE.idleHeld) {
      const r = Math.max(2, s * 0.2);
      const w = Math.max(1.2, s * 0.07);
      ctx.beginPath();
      ctx.arc(x + s / 2, y + s / 2, r, 0, Math.PI * 2);
      ctx.strokeStyle = p.ringDark;
      ctx.lineWidth = w + 2;
      ctx.stroke();
      ctx.strokeStyle = p.ringLight;
      ctx.lineWidth = w;
      ctx.stroke();
    }
    const b = this.band[t]!;
    const bh = b > 0 ? this.bandHeight() : 0;
    const vf = this.valueFont();
    const sf = this.symbolFont();
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    if (f === FILL_OFFLINE || f === FILL_STALE) {
      // A word where it fits at the minimum size or more, else one big symbol.
      const word = f === FILL_OFFLINE ? this.stateWords.offline : this.stateWords.stale;
      const inner = s - 2 * this.outlineWidth() - 4;
      let font = Math.round(s * 0.24);
      ctx.font = `900 ${font}px system-ui, sans-serif`;
      const w = ctx.measureText(word).width;
      if (w > inner) font = Math.floor((font * inner) / w);
      const cy = y + (s - bh) / 2;
      if (font >= this.minText) {
        ctx.font = `900 ${font}px system-ui, sans-serif`;
        this.plate(x + s / 2, cy, ctx.measureText(word).width + font * 0.5, font * 1.3);
        ctx.fillStyle = '#ffffff';
        ctx.fillText(word, x + s / 2, cy);
        this.fonts.state = Math.max(this.fonts.state, font);
      } else if (sf > 0) {
        const symbol = f === FILL_OFFLINE ? '✕' : '▲';
        ctx.font = `900 ${sf}px system-ui, sans-serif`;
        this.plate(x + s / 2, cy, sf * 1.1, sf * 1.1);
        ctx.fillStyle = '#ffffff';
        ctx.fillText(symbol, x + s / 2, cy);
        this.fonts.state = Math.max(this.fonts.state, sf);
      }
    } else if (vf > 0 && !(bits & BADGE.idleHeld)) {
      let text: string;
      let color: string;
      if (f === FILL_UNKNOWN) {
        text = '?';
        color = '#ffffff';
      } else {
        text = this.formatValue(this.shown[t]!, this.mode);
        color = (this.mode === 'utilization' ? UTIL_TEXT : TEMP_TEXT)[f] ?? p.text;
      }
      ctx.fillStyle = color;
      ctx.font = `700 ${vf}px system-ui, sans-serif`;
      ctx.fillText(text, x + s / 2, y + (s - bh) / 2, s - 2);
      this.fonts.value = vf;
    } else if (sf > 0 && f === FILL_UNKNOWN && !(bits & BADGE.idleHeld)) {
      ctx.fillStyle = '#ffffff';
      ctx.font = `700 ${sf}px system-ui, sans-serif`;
      ctx.fillText('?', x + s / 2, y + s / 2);
    }
    const nf = b > 0 ? this.bandFont() : 0;
    if (nf > 0) {
      let name = this.fitted.get(b);
      ctx.font = `700 ${nf}px system-ui, sans-serif`;
      if (name === undefined) {
        name = this.fit(this.bandNames[b] ?? '', s - 6);
        this.fitted.set(b, name);
      }
      if (name) {
        ctx.fillStyle = this.bandText[b] ?? p.text;
        ctx.fillText(name, x + s / 2, y + s - bh / 2);
        this.fonts.band = nf;
      }
    }
    if (t === this.focus) {
      const w = Math.max(2, Math.min(4, s * 0.15));
      ctx.strokeStyle = p.focus;
      ctx.lineWidth = w;
      ctx.strokeRect(x + w / 2, y + w / 2, s - w, s - w);
    }
  }

  /** A dark plate behind state words so they read on the stripes. */
  private plate(cx: number, cy: number, w: number, h: number): void {
    this.ctx.fillStyle = 'rgba(0, 0, 0, 0.78)';
    this.ctx.fillRect(cx - w / 2, cy - h / 2, w, h);
  }

  private cross(x: number, y: number, s: number): void {
    const m = s * 0.18;
    const ctx = this.ctx;
    ctx.beginPath();
    ctx.moveTo(x + m, y + m);
    ctx.lineTo(x + s - m, y + s - m);
    ctx.moveTo(x + s - m, y + m);
    ctx.lineTo(x + m, y + s - m);
    ctx.stroke();
  }

  /** Right-angled corner triangle at (cx, cy) with legs dx, dy (signs give the corner). */
  private triangle(cx: number, cy: number, dx: number, dy: number, fill: string, outline: boolean): void {
    const ctx = this.ctx;
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(cx + dx, cy);
    ctx.lineTo(cx, cy + dy);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    if (outline) {
      ctx.strokeStyle = this.palette.badgeStroke;
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }

  /** Wide diagonal stripes of `color` on `ground` (offline, stale). */
  private makeStripes(color: string, ground: string): CanvasPattern | string {
    if (typeof document === 'undefined') return color;
    const c = document.createElement('canvas');
    c.width = 16;
    c.height = 16;
    const g = c.getContext('2d');
    if (!g) return color;
    g.fillStyle = ground;
    g.fillRect(0, 0, 16, 16);
    g.strokeStyle = color;
    g.lineWidth = 5;
    g.beginPath();
    for (let o = -16; o <= 16; o += 16) {
      g.moveTo(o, 16);
      g.lineTo(o + 16, 0);
    }
    g.stroke();
    return this.ctx.createPattern(c, 'repeat') ?? color;
  }

  private makeHatch(): CanvasPattern | string {
    const p = this.palette;
    if (typeof document === 'undefined') return p.hatchBackground;
    const c = document.createElement('canvas');
    c.width = 6;
    c.height = 6;
    const g = c.getContext('2d');
    if (!g) return p.hatchBackground;
    g.fillStyle = p.hatchBackground;
    g.fillRect(0, 0, 6, 6);
    g.strokeStyle = p.hatchLine;
    g.lineWidth = 1.5;
    g.beginPath();
    g.moveTo(0, 6);
    g.lineTo(6, 0);
    g.moveTo(-1, 1);
    g.lineTo(1, -1);
    g.moveTo(5, 7);
    g.lineTo(7, 5);
    g.stroke();
    return this.ctx.createPattern(c, 'repeat') ?? p.hatchBackground;
  }
}
