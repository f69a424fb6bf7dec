import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, watchErrors } from './support/browser.ts';
import { stopAll } from './support/processes.ts';
import { waitFor } from './support/wait.ts';
import { startViewsFleet, type ViewsFleet } from './support/wall-views.ts';

// The alerts view against the real server: a low temperature threshold makes simulated GPUs fire.
describe('alerts view in headless Chromium', () => {
  let fleet: ViewsFleet;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpupulse-alerts-'));
    const alertsFile = join(dir, 'alerts.yaml');
    await writeFile(alertsFile, 'rules:\n  - id: gpu_temperature_high\n    threshold: 45\n    for: 1\n');
    fleet = await startViewsFleet({ env: { GPUPULSE_ALERTS: alertsFile } });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    errors = watchErrors(page);
    await page.goto(`${fleet.server.url}/alerts`);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    if (fleet) await rm(fleet.dataDir, { recursive: true, force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const rows = () => page.locator('[data-testid="alert-row"]');
  const count = async () =>
    Number(await page.locator('[data-testid="alert-count"]').getAttribute('data-shown'));

  it('lists firing alerts with localized text, linked to the GPU', async () => {
    await waitFor('firing alerts', async () => (await rows().count()) >= 2, 40_000, 500);
    const first = rows().first();
    expect(await first.getAttribute('data-state')).toBe('firing');
    expect(await first.locator('.text').textContent()).toContain('GPU temperature high');
    const href = await first.locator('[data-testid="alert-link"]').getAttribute('href');
    expect(href).toMatch(/^\/node\/[^/]+\/gpu\/\d+$/);
    await screenshot(page, 'views-alerts-en');
  });

  it('filters by node, severity, state and rule; the filters live in the URL', async () => {
    const all = await count();
    const node = (await rows().first().getAttribute('data-node')) ?? '';
    await page.locator('[data-testid="filter-node"]').fill(node);
    await waitFor('node filter', async () => (await count()) <= all && (await count()) > 0);
    for (const n of await rows().evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))))
      expect(n?.toLowerCase()).toContain(node.toLowerCase());
    expect(new URL(page.url()).searchParams.get('node')).toBe(node);

    await page.locator('[data-testid="filter-severity"]').selectOption('critical');
    await waitFor('critical only', async () =>
      rows().evaluateAll(
        (els) => els.length > 0 && els.every((e) => e.getAttribute('data-severity') === 'critical'),
      ),
    );
    await page.locator('[data-testid="filter-severity"]').selectOption('info'); // no info rule fires here
    await page.locator('[data-testid="alerts-state"]').waitFor();
    expect(await rows().count()).toBe(0);
    expect(new URL(page.url()).searchParams.get('severity')).toBe('info');

    await page.locator('[data-testid="filter-clear"]').click();
    await waitFor('all again', async () => (await count()) >= all - 2 && (await rows().count()) > 0);
    await page.locator('[data-testid="filter-state"]').selectOption('resolved');
    await waitFor(
      'resolved only',
      async () =>
        await rows().evaluateAll((els) => els.every((e) => e.getAttribute('data-state') === 'resolved')),
    );
    await page.locator('[data-testid="filter-state"]').selectOption('all');
    await page.locator('[data-testid="filter-rule"]').selectOption('gpu_temperature_high');
    await waitFor('rule filter', async () => (await rows().count()) > 0);
    expect(new URL(page.url()).searchParams.get('rule')).toBe('gpu_temperature_high');
    await page.locator('[data-testid="filter-clear"]').click();
  });

  it('the ticker and the headline on the wall show firing alerts', async () => {
    await page.locator('[data-testid="nav-cluster"]').click();
    await page.locator('[data-testid="ticker-alert"]').first().waitFor({ timeout: 20_000 });
    const firing = await page
      .locator('[data-testid="headline-figure"][data-key="firingAlerts"]')
      .getAttribute('data-value');
    expect(Number(firing)).toBeGreaterThan(0);
  });

  it('an alert links to the node/GPU detail route', async () => {
    await page.locator('[data-testid="nav-alerts"]').click();
    await rows().first().waitFor();
    const href = (await rows().first().locator('[data-testid="alert-link"]').getAttribute('href')) ?? '';
    await rows().first().locator('[data-testid="alert-link"]').click();
    await waitFor('detail route', () => new URL(page.url()).pathname === href);
  });

  it('in Korean', async () => {
    await page.goto(`${fleet.server.url}/alerts`);
    await page.locator('[data-testid="language-switch"]').selectOption('ko');
    await waitFor(
      'Korean rows',
      async () => ((await rows().first().locator('.text').textContent()) ?? '').includes('GPU 온도 높음'),
      20_000,
    );
    await screenshot(page, 'views-alerts-ko');
    await page.locator('[data-testid="language-switch"]').selectOption('en');
  });

  it('the page logged no errors', () => {
    expect(errors).toEqual([]);
  });
});
