import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { repoRoot } from './paths.ts';
import { type Proc, type ServerProc, startAgent, startSim } from './processes.ts';
import { startServerOnPort } from './server-on-port.ts';

/** Node names from the field that must render as text, never as markup. */
export const HOSTILE_PREFIX = '<img src=x onerror=alert(1)>';
export const KOREAN_NODE = `한국 "노드" 'q'`;
/** User names the simulator gives its processes (agent/src/sim/fleet.ts). */
export const SIM_USER_SAMPLE = ['kim.minji', 'lee.jihoon', 'park.seoyeon', 'choi.hyunwoo', 'jung.yuna'];

export interface ViewsFleet {
  server: ServerProc;
  env: Record<string, string>;
  dataDir: string;
  sims: Proc[];
  agent: Proc;
  simNodes: string[];
  hostileNodes: string[];
}

/**
 * The server (memory store, the demo projects file) with a simulated rack, two hostile-named
 * nodes and one real agent with a Korean, quoted name.
 */
export async function startViewsFleet(
  options: { env?: Record<string, string>; rackNodes?: number } = {},
): Promise<ViewsFleet> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-views-'));
  const env = {
    GPUPULSE_INFLUX_URL: '',
    GPUPULSE_INFLUX_BINARY: '/nonexistent',
    GPUPULSE_PROJECTS: resolve(repoRoot, 'examples/projects.yaml'),
    ...options.env,
  };
  const server = await startServerOnPort({ env, dataDir });
  const n = options.rackNodes ?? 6;
  const sims = [
    startSim(server.url, [
      '--nodes',
      String(n),
      '--gpus-per-node',
      '8',
      '--interval',
      '1000',
      '--prefix',
      'rack-a',
      // A fixed fleet: with a random seed ~5 % of starts had no idle-held GPU at all, and the
      // tests that compare idle-held figures need some (this one starts 8 × 8 with 16).
      '--seed',
      '140',
    ]),
    startSim(server.url, [
      '--nodes',
      '2',
      '--gpus-per-node',
      '4',
      '--interval',
      '1000',
      '--prefix',
      HOSTILE_PREFIX,
    ]),
  ];
  const agent = startAgent({ server: server.url, node: KOREAN_NODE, intervalMs: 1000 });
  return {
    server,
    env,
    dataDir,
    sims,
    agent,
    simNodes: Array.from({ length: n }, (_, i) => `rack-a-${String(i + 1).padStart(4, '0')}`),
    hostileNodes: [`${HOSTILE_PREFIX}-0001`, `${HOSTILE_PREFIX}-0002`],
  };
}

/** CSS attribute selector value, quotes and backslashes escaped. */
export function attr(value: string): string {
  return JSON.stringify(value);
}

/** Moves the mouse over the wall canvas until a tile's tooltip shows; returns its title. */
export async function hoverSomeTile(page: Page): Promise<string> {
  await page.evaluate(() => window.scrollTo(0, 0)); // the canvas sits at the top of the wall page
  const canvas = page.locator('[data-testid="wall-canvas"]');
  const box = await canvas.boundingBox();
  if (!box) throw new Error('no wall canvas');
  const tip = page.locator('[data-testid="wall-tooltip"]');
  // The first column of the first node block: a vertical scan from the top finds a tile.
  for (let y = 2; y < Math.min(box.height, 300); y += 4) {
    await page.mouse.move(box.x + 6, box.y + y);
    await page.waitForTimeout(40);
    if (await tip.isVisible()) return (await tip.locator('.title').textContent()) ?? '';
  }
  throw new Error('no tooltip appeared over the wall canvas');
}

/** A screenshot of the viewport only (a full-page shot resizes the page and closes tooltips). */
export async function viewportShot(page: Page, name: string): Promise<string> {
  const { mkdirSync } = await import('node:fs');
  const { artifactsDir } = await import('./paths.ts');
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Viewports the wall is checked at (issue 11: every route at 1080p and 4K). */
export const WALL_SIZES = [
  { name: '1080p', width: 1920, height: 1080 },
  { name: '4k', width: 3840, height: 2160 },
] as const;

/** The wall's minimum text size as a fraction of the viewport height (web/src/lib/wall-layout.ts). */
export const WALL_MIN_TEXT_FRACTION = 0.01;

export interface TextBox {
  text: string;
  fontPx: number;
  overflow: boolean;
  inViewport: boolean;
}

/**
 * Every visible element under `root` that holds text of its own: its font size, whether its text
 * overflows its box (`scrollWidth > clientWidth`), and whether it lies inside the viewport.
 */
export async function textBoxes(page: Page, root: string): Promise<TextBox[]> {
  return page.evaluate((sel) => {
    const out: { text: string; fontPx: number; overflow: boolean; inViewport: boolean }[] = [];
    const base = document.querySelector(sel);
    if (!base) return out;
    for (const el of base.querySelectorAll<HTMLElement>('*')) {
      let own = '';
      for (const n of el.childNodes) if (n.nodeType === 3) own += n.textContent ?? '';
      own = own.trim();
      if (!own) continue;
      const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden' || cs.display === 'none') continue;
      // Visually hidden text (screen readers only) is not on screen.
      if (r.width <= 1 && r.height <= 1) continue;
      out.push({
        text: own.slice(0, 60),
        fontPx: Number.parseFloat(cs.fontSize),
        overflow: el.scrollWidth > el.clientWidth + 1 && cs.display !== 'inline',
        inViewport: r.left >= -1 && r.top >= -1 && r.right <= innerWidth + 1 && r.bottom <= innerHeight + 1,
      });
    }
    return out;
  }, root);
}

/** Fraction of the pixels of a canvas rectangle (CSS px) whose colour is within `tol` of `rgb`. */
export async function canvasColorShare(
  page: Page,
  rect: { x: number; y: number; size: number },
  rgb: [number, number, number],
  tol = 40,
): Promise<number> {
  return page.evaluate(
    ({ rect: r, rgb: c, tol: t }) => {
      const canvas = document.querySelector<HTMLCanvasElement>('[data-testid="wall-canvas"]');
      const ctx = canvas?.getContext('2d');
      if (!canvas || !ctx) return 0;
      const dpr = canvas.width / canvas.getBoundingClientRect().width;
      const d = ctx.getImageData(
        Math.round(r.x * dpr),
        Math.round(r.y * dpr),
        Math.round(r.size * dpr),
        Math.round(r.size * dpr),
      ).data;
      let hit = 0;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i]! - c[0]) <= t && Math.abs(d[i + 1]! - c[1]) <= t && Math.abs(d[i + 2]! - c[2]) <= t)
          hit++;
      return hit / (d.length / 4);
    },
    { rect, rgb, tol },
  );
}
