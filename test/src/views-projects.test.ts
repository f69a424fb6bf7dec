import { rm } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, watchErrors } from './support/browser.ts';
import { stopAll } from './support/processes.ts';
import { waitFor } from './support/wait.ts';
import { SIM_USER_SAMPLE, startViewsFleet, type ViewsFleet } from './support/wall-views.ts';

// The projects view against the real server with the demo projects file and the simulator.
describe('projects view in headless Chromium', () => {
  let fleet: ViewsFleet;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    fleet = await startViewsFleet({ rackNodes: 10 });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    errors = watchErrors(page);
    await page.goto(`${fleet.server.url}/projects`);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    if (fleet) await rm(fleet.dataDir, { recursive: true, force: true });
  });

  const rows = () => page.locator('[data-testid="project-row"]');

  it('shows live usage per project with names, colours and quotas from the projects file', async () => {
    await waitFor('project rows', async () => (await rows().count()) >= 2, 30_000, 250);
    const ids = await rows().evaluateAll((els) => els.map((e) => e.getAttribute('data-project')));
    expect(ids.some((id) => id && id !== 'unassigned')).toBe(true);
    // A project of the demo file shows its English name, not only its id.
    const named = await page.locator('[data-testid="project-row"] [data-field="name"]').allTextContents();
    expect(named.some((n) => /[a-z] [a-z]/i.test(n))).toBe(true);
    expect(await page.locator('[data-testid="project-row"] .bar').count()).toBeGreaterThan(0);
    await page.locator('[data-testid="projects-chart"] canvas').first().waitFor();
    await screenshot(page, 'views-projects-en');
  });

  it('a live value changes', async () => {
    const cells = page.locator('[data-testid="project-row"] [data-field="power"]');
    const before = (await cells.allTextContents()).join('|');
    await waitFor(
      'a project figure to change',
      async () => (await cells.allTextContents()).join('|') !== before,
      20_000,
      500,
    );
  });

  it('sorts by a column (click, and Enter on the header button)', async () => {
    await page.locator('[data-testid="sort-project"]').click();
    await waitFor(
      'ascending by name',
      async () =>
        (await page.locator('th:has([data-testid="sort-project"])').getAttribute('aria-sort')) ===
        'ascending',
    );
    const names = await page.locator('[data-testid="project-row"] [data-field="name"]').allTextContents();
    expect(names).toEqual(
      [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true, sensitivity: 'base' })),
    );
    await page.locator('[data-testid="sort-gpusInUse"]').focus();
    await page.keyboard.press('Enter');
    await waitFor(
      'descending by GPUs',
      async () =>
        (await page.locator('th:has([data-testid="sort-gpusInUse"])').getAttribute('aria-sort')) ===
        'descending',
    );
  });

  it('privacy mode shows project names but no user names', async () => {
    const toggle = page.locator('[data-testid="privacy-toggle"]');
    if ((await toggle.getAttribute('data-privacy')) !== 'true') await toggle.click();
    await page.locator('[data-testid="privacy-toggle"][data-privacy="true"]').waitFor();
    const text = (await page.locator('main').textContent()) ?? '';
    for (const u of SIM_USER_SAMPLE) expect(text).not.toContain(u);
    expect(await rows().count()).toBeGreaterThan(0);
    await toggle.click();
  });

  it('range buttons switch the chart; the note says where the data comes from', async () => {
    for (const r of ['24h', '7d', '1h']) {
      await page.locator(`[data-testid="range-${r}"]`).click();
      await waitFor(
        `range ${r}`,
        async () =>
          (await page.locator(`[data-testid="range-${r}"]`).getAttribute('aria-checked')) === 'true',
      );
    }
    await waitFor(
      'a data source',
      async () =>
        (await page.locator('[data-testid="projects-chart"]').getAttribute('data-source')) !== 'loading',
      20_000,
    );
  });

  it('in Korean', async () => {
    await page.locator('[data-testid="language-switch"]').selectOption('ko');
    await waitFor('Korean headers', async () =>
      ((await page.locator('[data-testid="projects-table"] thead').textContent()) ?? '').includes(
        '사용 중 GPU',
      ),
    );
    await screenshot(page, 'views-projects-ko');
    await page.locator('[data-testid="language-switch"]').selectOption('en');
  });

  it('the page logged no errors', () => {
    expect(errors).toEqual([]);
  });
});
