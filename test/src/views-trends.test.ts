import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './support/browser.ts';
import { repoRoot } from './support/paths.ts';
import { startSim, stopAll } from './support/processes.ts';
import { openPage, startViewsStack, unexpectedErrors, type ViewsStack } from './support/views.ts';
import { waitFor } from './support/wait.ts';

// Trends against the real server on a real influxd with the demo projects file: a fresh
// database, so first the "no data yet" state, then (once the first 1-minute rollups are
// written) a short history, exported as CSV and PNG; in both languages, dark, full screen.
describe('Trends view', () => {
  let stack: ViewsStack;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    stack = await startViewsStack({
      GPUPULSE_PROJECTS: resolve(repoRoot, 'examples/projects.yaml'),
      GPUPULSE_ROLLUP_GRACE_MS: '1000',
    });
    startSim(stack.server.url, [
      '--nodes',
      '4',
      '--gpus-per-node',
      '8',
      '--interval',
      '500',
      '--prefix',
      'sim',
    ]);
    ({ page, errors } = await openPage(stack.browser, stack.server.url, { width: 1920, height: 1080 }));
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await stack?.stop();
  });

  const card = (id: string) => page.locator(`[data-testid="chart-card"][data-chart="${id}"]`);

  it('renders every chart with a designed state before any rollup exists', async () => {
    await page.goto(`${stack.server.url}/trends`);
    for (const id of [
      'cluster-utilization',
      'gpu-hours-project',
      'gpu-hours-institution',
      'top-projects',
      'energy',
    ]) {
      await card(id).waitFor({ timeout: 10_000 });
      await waitFor(
        `${id} loaded`,
        async () => (await card(id).getAttribute('data-state')) !== 'loading',
        15_000,
        200,
      );
      expect(['ready', 'empty']).toContain(await card(id).getAttribute('data-state'));
    }
    if ((await card('cluster-utilization').getAttribute('data-state')) === 'empty')
      expect(
        await card('cluster-utilization').locator('[data-testid="chart-message"]').textContent(),
      ).toContain('No usage');
    await screenshot(page, 'trends-empty-en');
  });

  it('the period picker changes the requests', async () => {
    const requests: string[] = [];
    const onRequest = (r: { url(): string }) => {
      if (r.url().includes('/api/v1/')) requests.push(r.url());
    };
    page.on('request', onRequest);
    await page.locator('[data-testid="range-option"][data-range="90d"]').click();
    await waitFor(
      '90-day requests',
      () => requests.filter((u) => span(u) === 90 * 86_400_000).length >= 3,
      10_000,
      100,
    );
    expect(requests.some((u) => u.includes('/api/v1/history') && u.includes('scope=cluster'))).toBe(true);
    expect(requests.some((u) => u.includes('/api/v1/usage') && u.includes('groupBy=institution'))).toBe(true);
    expect(page.url()).toContain('range=90d');
    page.off('request', onRequest);
    await page.locator('[data-testid="range-option"][data-range="7d"]').click();
  });

  it('a short history is said so, and each chart exports CSV and PNG', async () => {
    // The tier follows the data that exists: minutes of history over 7 days come as raw samples.
    // The first 1-minute rollup lands at the next minute boundary (+1 s grace) and the raw cluster
    // series gets a point every 10 s, so for up to 10 s after the first minute only the minute tier
    // holds utilization (answered from it, rightly); the raw answer follows within seconds.
    await waitFor(
      'cluster utilization from raw samples',
      async () => {
        await page.goto(`${stack.server.url}/trends?range=7d`);
        const c = card('cluster-utilization');
        await waitFor('loaded', async () => (await c.getAttribute('data-state')) !== 'loading', 15_000, 200);
        if ((await c.getAttribute('data-state')) !== 'ready') return false;
        return ((await page.locator('[data-testid="trends-tier"]').textContent()) ?? '').includes(
          'raw samples',
        );
      },
      150_000,
      5000,
    );
    await page.locator('[data-testid="trends-short"]').waitFor({ timeout: 5000 });
    expect(await page.locator('[data-testid="trends-short"]').textContent()).toContain('less than a day');
    // The axis covers the asked 7 days; the part before the history is marked, not cropped away.
    expect(await card('cluster-utilization').getAttribute('data-no-data-until')).toMatch(/^\d+$/);

    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      card('cluster-utilization').locator('[data-testid="export-csv"]').click(),
    ]);
    expect(csv.suggestedFilename()).toMatch(/^gpupulse-cluster-utilization-\d{4}-\d{2}-\d{2}\.csv$/);
    const text = readFileSync((await csv.path()) as string, 'utf8').replace(/^\ufeff/, '');
    expect(text.split('\r\n')[0]).toBe('time,utilization_percent');
    expect(text.split('\r\n').length).toBeGreaterThan(2);

    const [png] = await Promise.all([
      page.waitForEvent('download'),
      card('cluster-utilization').locator('[data-testid="export-png"]').click(),
    ]);
    expect(png.suggestedFilename()).toMatch(/\.png$/);
    const bytes = readFileSync((await png.path()) as string);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');

    // Usage per project: once rows exist, client CSV and the server's own CSV link.
    const proj = card('gpu-hours-project');
    if ((await proj.getAttribute('data-state')) === 'ready') {
      const [dl] = await Promise.all([
        page.waitForEvent('download'),
        proj.locator('[data-testid="export-csv"]').click(),
      ]);
      const body = readFileSync((await dl.path()) as string, 'utf8').replace(/^\ufeff/, '');
      expect(body.split('\r\n')[0]).toBe(
        'period_start,project,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh',
      );
      const href = await proj.locator('[data-testid="export-server-csv"]').getAttribute('href');
      const res = await fetch(`${stack.server.url}${href}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/csv');
    }
    await screenshot(page, 'trends-short-en');
  }, 200_000);

  it('speaks Korean, and looks right full screen in the dark theme', async () => {
    await page.selectOption('[data-testid="language-switch"]', 'ko');
    await page.locator('h1', { hasText: '추이' }).waitFor({ timeout: 5000 });
    await waitFor(
      'loaded',
      async () => (await card('cluster-utilization').getAttribute('data-state')) !== 'loading',
      15_000,
      200,
    );
    expect(await card('energy').locator('h3').textContent()).toBe('주간 에너지 사용량');
    await screenshot(page, 'trends-short-ko');
    await page.selectOption('[data-testid="language-switch"]', 'en');
  });

  it('logged no errors', () => {
    expect(unexpectedErrors(errors)).toEqual([]);
  });
});

function span(url: string): number {
  const p = new URL(url).searchParams;
  return Number(p.get('to')) - Number(p.get('from'));
}
