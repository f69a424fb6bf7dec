import type { NodeStatus, NodeView } from '@gpupulse/protocol';
import { textColorOn } from './color-scale.ts';
import { currentUtilization } from './fleet-state.ts';
import { BADGE, gpuBadges } from './gpu-badges.ts';
import {
  type ColorMode,
  FILL_OFFLINE,
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
  private fill = new Uint8Array(0);
  private band = new Uint16Array(0);
  private badges = new Uint8Array(0);
  private shown = new Int16Array(0);
  private nodeStatus = new Uint8Array(0);
  /** Scratch for one update: dirty tile indices, their origins, and a bucket order. */
  private dirty = new Int32Array(0);
  private dx = new Float32Array(0);
  private dy = new Float32Array(0);
  private order = new Int32Array(0);
  private bucketCounts = new Uint32Array(0);
  private needsFull = true;
  private projectCodes = new Map<string, number>();
  private bandColors: string[] = [''];
  private ownColors: ReadonlyMap<string, string> = new Map();
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
    if (this.focus >= layout.tileCount) this.focus = -1;
    this.needsFull = true;
  }

  setPalette(palette: WallPalette): void {
    this.palette = palette;
    this.hatch = this.makeHatch();
    this.needsFull = true;
  }

  setMode(mode: ColorMode): void {
    if (mode !== this.mode) {
      this.mode = mode;
      this.needsFull = true;
    }
  }

  /** Project colours from the projects file (id → `#rrggbb`). */
  setProjectColors(colors: ReadonlyMap<string, string>): void {
    this.ownColors = colors;
    this.projectCodes.clear();
    this.bandColors = [''];
    this.needsFull = true;
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
      this.bandColors.push(projectColor(project, this.ownColors.get(project)));
      this.projectCodes.set(project, code);
    }
    return code;
  }

  /**
   * Encodes the nodes (in layout order) and redraws what changed. `errorGpus`: `node/index` keys
   * with a firing hardware-error alert.
   */
  update(nodes: readonly NodeView[], errorGpus: ReadonlySet<string> | null): WallDrawStats {
    this.nodes = nodes;
    const l = this.layout;
    const stats: WallDrawStats = { tiles: 0, labels: 0, full: this.needsFull };
    if (!l) return stats;
    const full = this.needsFull;
    this.needsFull = false;
    const { fill, band, badges, shown, nodeStatus, mode } = this;
    this.withTransform(() => {
      const ctx = this.ctx;
      if (full) {
        ctx.fillStyle = this.palette.surface;
        ctx.fillRect(0, 0, this.canvas.width / this.dpr, this.canvas.height / this.dpr);
        this.drawHeaders();
      }
      const n = Math.min(nodes.length, l.nodeCount);
      // Small tiles carry no text: their colour bin is all that shows, so 2 % steps suffice
      // (half the redraws of 1 % steps on a jittery fleet, no visible difference).
      const textTiles = l.tile >= MIN_TEXT_TILE;
      const step = textTiles ? 1 : 2;
      const { dirty, dx, dy } = this;
      let nd = 0;
      for (let i = 0; i < n; i++) {
        const node = nodes[i]!;
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
          let f = offline ? FILL_OFFLINE : fillBin(mode, value);
          if (step === 2 && f <= 100) f = Math.min(100, (f + 1) & ~1);
          const b = offline ? 0 : this.bandCode(gpu.project);
          const err = errorGpus !== null && errorGpus.size > 0 && errorGpus.has(`${node.node}/${gpu.index}`);
          const bits = gpuBadges(node.status, gpu, err);
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
      if (code === FILL_OFFLINE) {
        ctx.fillStyle = p.surface;
        ctx.beginPath();
        for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]!, dy[order[k]!]!, s, s);
        ctx.fill();
        ctx.strokeStyle = p.offlineStroke;
        ctx.lineWidth = 1;
        ctx.setLineDash(s >= 8 ? [3, 2] : []);
        ctx.beginPath();
        for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]! + 0.5, dy[order[k]!]! + 0.5, s - 1, s - 1);
        ctx.stroke();
        ctx.setLineDash([]);
      } else {
        ctx.fillStyle = code === FILL_UNKNOWN ? this.hatch : (lut[code] ?? p.surface);
        ctx.beginPath();
        for (let k = at; k < at + c; k++) ctx.rect(dx[order[k]!]!, dy[order[k]!]!, s, s);
        ctx.fill();
      }
      at += c;
    }

    // Project bands, bucketed by band code.
    const bh = Math.max(2, Math.round(s * 0.2));
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
    const text = s >= MIN_TEXT_TILE || s >= 12;
    for (let k = 0; k < nd; k++) {
      const t = dirty[k]!;
      if (badges[t] === 0 && t !== this.focus && !(text && (s >= MIN_TEXT_TILE || fill[t] === FILL_UNKNOWN)))
        continue;
      this.drawExtras(dx[k]!, dy[k]!, t);
    }
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
      ctx.font = `700 ${Math.round(h.height * 0.72)}px system-ui, sans-serif`;
      ctx.fillText(h.name, h.x, h.y + h.height / 2, l.width);
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
    ctx.font = `600 ${Math.round(l.labelHeight * 0.72)}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    ctx.fillText(`${STATUS_SYMBOL[node.status]} ${node.node}`, x, y + l.labelHeight / 2);
    ctx.restore();
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
    if (f === FILL_OFFLINE) {
      ctx.strokeStyle = p.offlineStroke;
      ctx.lineWidth = 1;
      ctx.setLineDash(s >= 8 ? [3, 2] : []);
      ctx.strokeRect(x + 0.5, y + 0.5, s - 1, s - 1);
      ctx.setLineDash([]);
    } else {
      ctx.fillStyle = f === FILL_UNKNOWN ? this.hatch : (lut[f] ?? p.surface);
      ctx.fillRect(x, y, s, s);
    }
    const b = this.band[t]!;
    if (b > 0) {
      const bh = Math.max(2, Math.round(s * 0.2));
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
    if (s >= MIN_TEXT_TILE && !(bits & BADGE.idleHeld)) {
      let text: string;
      let color: string;
      if (f === FILL_OFFLINE) {
        text = '–';
        color = p.mutedText;
      } else if (f === FILL_UNKNOWN) {
        text = '?';
        color = '#ffffff';
      } else {
        text = this.formatValue(this.shown[t]!, this.mode);
        color = (this.mode === 'utilization' ? UTIL_TEXT : TEMP_TEXT)[f] ?? p.text;
      }
      ctx.fillStyle = color;
      ctx.font = `700 ${Math.round(s * 0.3)}px system-ui, sans-serif`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(text, x + s / 2, y + s * 0.45, s - 2);
    } else if (s >= 12 && f === FILL_UNKNOWN && !(bits & BADGE.idleHeld)) {
      ctx.fillStyle = '#ffffff';
      ctx.font = `700 ${Math.round(s * 0.6)}px system-ui, sans-serif`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('?', x + s / 2, y + s / 2);
    }
    if (t === this.focus) {
      const w = Math.max(2, Math.min(4, s * 0.15));
      ctx.strokeStyle = p.focus;
      ctx.lineWidth = w;
      ctx.strokeRect(x + w / 2, y + w / 2, s - w, s - w);
    }
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
