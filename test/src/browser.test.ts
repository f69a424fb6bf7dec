import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, showNodeList, watchErrors } from './support/browser.ts';
import {
  type Proc,
  type ServerProc,
  startAgent,
  startServer,
  startSim,
  stopAll,
} from './support/processes.ts';
import { waitFor } from './support/wait.ts';

// The dashboard as a person sees it: real Chromium, served by the real server (embedded default
// storage), fed by the simulator (4 nodes × 8 GPUs) and one real agent on a replayed capture.
describe('dashboard in headless Chromium', () => {
  let server: ServerProc;
  let agent: Proc;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const simNodes = ['sim-0001', 'sim-0002', 'sim-0003', 'sim-0004'];

  beforeAll(async () => {
    server = await startServer({ GPUPULSE_INFLUX_URL: '' });
    startSim(server.url, ['--nodes', '4', '--gpus-per-node', '8', '--interval', '500', '--prefix', 'sim']);
    agent = startAgent({ server: server.url, node: 'replay-h100', intervalMs: 500 });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    errors = watchErrors(page);
    await page.goto(server.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  it('shows every simulated node with all its GPUs', async () => {
    // The list below the wall's canvas follows the fleet while on screen: these tests read it there.
    await showNodeList(page);
    for (const node of [...simNodes, 'replay-h100']) {
      await page.locator(`[data-testid="node-row"][data-node="${node}"]`).waitFor({ timeout: 30_000 });
    }
    for (const node of simNodes) {
      // A node's row appears when its agent connects; its GPU cells with its first sample.
      const cells = page.locator(`[data-testid="node-row"][data-node="${node}"] [data-testid="gpu-cell"]`);
      await cells.nth(7).waitFor({ timeout: 30_000 });
      expect(await cells.count()).toBe(8);
    }
    expect(
      await page.locator('[data-testid="node-row"][data-node="replay-h100"]').getAttribute('data-status'),
    ).toBe('online');
    const shot = await screenshot(page, 'cluster-overview');
    expect(existsSync(shot)).toBe(true);
  });

  it('sees live values change', async () => {
    await showNodeList(page); // a full-page screenshot scrolls back to the top
    const cells = page.locator('[data-testid="node-row"][data-node^="sim-"] [data-testid="gpu-cell"]');
    const read = async () =>
      new Map(
        await cells.evaluateAll((els) =>
          els.map((e) => [e.getAttribute('data-gpu') ?? '', e.textContent ?? '']),
        ),
      );
    const before = await read();
    expect(before.size).toBe(32);
    await waitFor(
      'a GPU value to change on screen',
      async () => {
        const after = await read();
        return [...after].some(([id, text]) => before.has(id) && before.get(id) !== text);
      },
      20_000,
      500,
    );
  });

  it('a silent agent turns stale, then offline, on screen', async () => {
    await showNodeList(page);
    const row = page.locator('[data-testid="node-row"][data-node="replay-h100"]');
    agent.child.kill('SIGSTOP'); // frozen: connected but silent
    await waitFor('stale', async () => (await row.getAttribute('data-status')) === 'stale', 15_000, 250);
    await screenshot(page, 'cluster-node-stale');
    await showNodeList(page); // the full-page shot may leave the page scrolled back to the top
    await waitFor('offline', async () => (await row.getAttribute('data-status')) === 'offline', 45_000, 500);
    await screenshot(page, 'cluster-node-offline');
    agent.child.kill('SIGKILL');
  });

  it('the page logged no errors', () => {
    expect(errors).toEqual([]);
  });
});
