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
