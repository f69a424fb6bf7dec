import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './support/browser.ts';
import { startAgent, startSim, stopAll } from './support/processes.ts';
import { openPage, startViewsStack, unexpectedErrors, type ViewsStack } from './support/views.ts';
import { waitFor } from './support/wait.ts';

const HOSTILE = ['<img src=x onerror=alert(1)>', `quote"'node & <b>`, '노드-한국어 01'];
const nodeUrl = (origin: string, name: string, q = '') => `${origin}/node/${encodeURIComponent(name)}${q}`;
const gpuUrl = (origin: string, name: string, i: number, q = '') =>
  `${origin}/node/${encodeURIComponent(name)}/gpu/${i}${q}`;

// Node and GPU detail against the real server on a real influxd, fed by the simulator and by
// real agents (replayed nvidia-smi captures) with hostile node names.
describe('node and GPU detail views', () => {
  let stack: ViewsStack;
  let page: Page;
  let errors: string[];
  let dialogs: string[];

  beforeAll(async () => {
    stack = await startViewsStack();
    startSim(stack.server.url, [
      '--nodes',
      '2',
      '--gpus-per-node',
      '4',
      '--interval',
      '500',
      '--prefix',
      'sim',
    ]);
    for (const node of HOSTILE) startAgent({ server: stack.server.url, node, intervalMs: 500 });
    ({ page, errors, dialogs } = await openPage(stack.browser, stack.server.url));
    // Some seconds of raw history before the pages ask for it.
    await waitFor(
      'nodes on the server',
      async () => {
        const r = await fetch(`${stack.server.url}/api/v1/fleet`);
        const body = (await r.json()) as { nodes: { node: string }[] };
        return body.nodes.length >= 2 + HOSTILE.length;
      },
      30_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 4000));
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await stack?.stop();
  });

  it('node detail renders GPUs, history charts that continue live, host metrics and processes', async () => {
    const historyRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/history')) historyRequests.push(r.url());
    });
    await page.goto(nodeUrl(stack.server.url, 'sim-0001'));
    await page.locator('[data-testid="node-gpu-row"]').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid="node-gpu-row"]').count()).toBe(4);
    expect(await page.locator('[data-testid="detail-title"]').textContent()).toContain('sim-0001');
    const charts = page.locator('[data-testid="metric-charts"]');
    await waitFor(
      'history loaded',
      async () => (await charts.getAttribute('data-status')) === 'ready',
      20_000,
      200,
    );
    expect(await charts.getAttribute('data-tier')).toBe('raw');
    expect(historyRequests.some((u) => new URL(u).searchParams.get('scope') === 'node')).toBe(true);
    // History points come first; live values keep being appended (the count grows).
    const util = page.locator('[data-testid="chart-card"][data-chart="utilization"]');
    const before = Number(await util.getAttribute('data-points'));
    expect(before).toBeGreaterThanOrEqual(4); // at least a history point per GPU
    await waitFor(
      'live points appended',
      async () => Number(await util.getAttribute('data-points')) > before + 4,
      15_000,
      250,
    );
    expect(await page.locator('[data-testid="host-metrics"] [data-field="cpu"]').count()).toBe(1);
    // No per-process endpoint on this server yet: the designed fallback, from the GPU summary.
    const procs = page.locator('[data-testid="process-table"]');
    await waitFor(
      'process table state',
      async () => (await procs.getAttribute('data-status')) !== 'loading',
      10_000,
    );
    if ((await procs.getAttribute('data-source')) === 'summary') {
      expect(await page.locator('[data-testid="processes-unavailable"]').isVisible()).toBe(true);
      expect(await page.locator('[data-testid="process-summary-row"]').count()).toBe(4);
    } else {
      // The simulator's jobs come and go at random: sim-0001 may have all four GPUs free. The table
      // shows what the endpoint has now: rows when it lists processes, else the "none" note.
      await waitFor(
        'the process table showing what the server has',
        async () => {
          const r = await fetch(`${stack.server.url}/api/v1/nodes/sim-0001/processes`);
          const listed = ((await r.json()) as { processes: unknown[] }).processes.length;
          const rows = await page.locator('[data-testid="process-row"]').count();
          const none = await procs.locator('.empty').count();
          return listed > 0 ? rows > 0 : none === 1 && rows === 0;
        },
        15_000,
        500,
      );
    }
    await screenshot(page, 'detail-node-en');
  });

  it('the range picker changes the history request; the tier follows the data that exists', async () => {
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/history')) requests.push(r.url());
    });
    await page.locator('[data-testid="range-option"][data-range="24h"]').click();
    await waitFor('a 24 h request', () => requests.some((u) => span(u) === 24 * 3600_000), 10_000, 100);
    expect(page.url()).toContain('range=24h');
    const charts = page.locator('[data-testid="metric-charts"]');
    // The tier follows the data that exists: this fresh server holds minutes of history, so 24 h
    // is answered from raw samples (not from a handful of 1-minute means).
    await waitFor(
      'tier raw for 24 h',
      async () => (await charts.getAttribute('data-tier')) === 'raw',
      15_000,
      200,
    );
    await page.locator('[data-testid="range-option"][data-range="15m"]').focus();
    await page.keyboard.press('ArrowRight'); // keyboard moves to 1 h
    await waitFor('a 1 h request', () => requests.some((u) => span(u) === 3600_000), 10_000, 100);
    await waitFor('tier raw', async () => (await charts.getAttribute('data-tier')) === 'raw', 15_000, 200);
  });

  it('GPU detail shows live values, health and exports a CSV', async () => {
    await page.goto(gpuUrl(stack.server.url, 'sim-0002', 1));
    await page.locator('[data-testid="gpu-health"]').waitFor({ timeout: 20_000 });
    const latest = page.locator('[data-testid="metric-latest"][data-metric="power"]');
    await waitFor(
      'a power value',
      async () => ((await latest.textContent()) ?? '—').trim() !== '—',
      15_000,
      200,
    );
    const first = await latest.textContent();
    await waitFor(
      'the live value to change',
      async () => (await latest.textContent()) !== first,
      20_000,
      250,
    );
    for (const field of ['state', 'clockEvents', 'pstate', 'eccMode', 'eccVolatile', 'pcie', 'persistence'])
      expect(await page.locator(`[data-testid="gpu-health"] [data-field="${field}"]`).count()).toBe(1);
    expect(await page.locator('[data-testid="mig-devices"]').count()).toBe(1);
    const charts = page.locator('[data-testid="metric-charts"]');
    await waitFor(
      'history loaded',
      async () => (await charts.getAttribute('data-status')) === 'ready',
      20_000,
      200,
    );
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('[data-chart="temperature"] [data-testid="export-csv"]').click(),
    ]);
    expect(download.suggestedFilename()).toMatch(
      /^gpupulse-sim-0002-gpu1-temperature-\d{4}-\d{2}-\d{2}\.csv$/,
    );
    const csv = readFileSync((await download.path()) as string, 'utf8');
    expect(csv.replace(/^\ufeff/, '').split('\r\n')[0]).toBe('time,Temperature');
    expect(csv.split('\r\n').length).toBeGreaterThan(3);
    await screenshot(page, 'detail-gpu-en');
  });

  it('the language switch changes the text (ko)', async () => {
    await page.selectOption('[data-testid="language-switch"]', 'ko');
    await waitFor(
      'Korean title',
      async () =>
        ((await page.locator('[data-testid="detail-title"]').textContent()) ?? '').includes('노드의 GPU'),
      5000,
    );
    expect(await page.locator('[data-chart="utilization"] h3').textContent()).toBe('가동률');
    await page.waitForTimeout(1500); // charts redraw at most once a second
    await screenshot(page, 'detail-gpu-ko');
    await page.goto(nodeUrl(stack.server.url, 'sim-0001'));
    await page.locator('[data-testid="node-gpu-row"]').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid="detail-title"]').textContent()).toBe('노드 sim-0001');
    await screenshot(page, 'detail-node-ko');
    await page.selectOption('[data-testid="language-switch"]', 'en');
  });

  it('hostile node names render as plain text and round-trip through the URL', async () => {
    for (const [i, name] of HOSTILE.entries()) {
      await page.goto(nodeUrl(stack.server.url, name));
      await page.locator('[data-testid="node-gpu-row"]').first().waitFor({ timeout: 20_000 });
      expect(await page.locator('[data-testid="node-page"]').getAttribute('data-node')).toBe(name);
      expect(await page.locator('[data-testid="detail-title"]').textContent()).toBe(`Node ${name}`);
      expect(await page.locator('main img').count()).toBe(0);
      expect(await page.locator('main b').count()).toBe(0);
      // The GPU link keeps the name encoded, and the GPU page finds the node again.
      await page.locator('[data-testid="gpu-link"]').first().click();
      await page.locator('[data-testid="gpu-health"]').waitFor({ timeout: 20_000 });
      expect(await page.locator('[data-testid="gpu-page"]').getAttribute('data-node')).toBe(name);
      expect(await page.locator('[data-testid="node-link"]').textContent()).toBe(name);
      const charts = page.locator('[data-testid="metric-charts"]');
      await waitFor(
        'history loaded',
        async () => (await charts.getAttribute('data-status')) === 'ready',
        20_000,
        200,
      );
      await screenshot(page, `detail-hostile-${i}`);
    }
    expect(dialogs).toEqual([]);
  });

  it('an unknown node or GPU gets a designed not-found state', async () => {
    await page.goto(nodeUrl(stack.server.url, 'no-such-node'));
    await page.locator('[data-testid="detail-state"][data-state="not-found"]').waitFor({ timeout: 10_000 });
    await page.goto(gpuUrl(stack.server.url, 'sim-0001', 42));
    await page.locator('[data-testid="detail-state"][data-state="not-found"]').waitFor({ timeout: 10_000 });
    await screenshot(page, 'detail-not-found');
  });

  it('a pointer moving over live charts meets no error (hover during the once-a-second update)', async () => {
    // ~300 moves per chart over its live updates; with ECharts' lazy update this threw
    // "reading 'getRawIndex'" several times per chart.
    const before = errors.length;
    for (const url of [nodeUrl(stack.server.url, 'sim-0001'), gpuUrl(stack.server.url, 'sim-0001', 0)]) {
      await page.goto(url);
      const chart = page.locator('[data-chart="utilization"] .chart-canvas').first();
      await chart.waitFor({ timeout: 20_000 });
      await waitFor(
        'history loaded',
        async () =>
          (await page.locator('[data-testid="metric-charts"]').getAttribute('data-status')) === 'ready',
        20_000,
        200,
      );
      const box = await chart.boundingBox();
      if (!box) throw new Error(`no chart box on ${url}`);
      const t0 = Date.now();
      for (let k = 0; Date.now() - t0 < 5000; k++)
        await page.mouse.move(box.x + box.width * (0.85 + 0.1 * (k % 2)), box.y + box.height * 0.5);
    }
    expect(errors.slice(before)).toEqual([]);
  });

  it('the pages logged no errors', () => {
    expect(unexpectedErrors(errors)).toEqual([]);
  });
});

function span(url: string): number {
  const p = new URL(url).searchParams;
  return Number(p.get('to')) - Number(p.get('from'));
}
