import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './support/browser.ts';
import { startSim, stopAll } from './support/processes.ts';
import { openPage, startViewsStack, unexpectedErrors, type ViewsStack } from './support/views.ts';
import { waitFor } from './support/wait.ts';

/** A query parameter of the page's URL, decoded (the router leaves `/` in a k8s job id as it is). */
const queryOf = (page: Page, name: string) => new URL(page.url()).searchParams.get(name);

interface FleetGpu {
  index: number;
  users?: string[];
  jobs?: string[];
  project: string | null;
}

// My work against the real server (real influxd), fed by the simulator's users, jobs and projects.
describe('My work view', () => {
  let stack: ViewsStack;
  let page: Page;
  let errors: string[];
  let user: string;
  let job: string;

  beforeAll(async () => {
    stack = await startViewsStack();
    startSim(stack.server.url, [
      '--nodes',
      '3',
      '--gpus-per-node',
      '8',
      '--interval',
      '500',
      '--prefix',
      'sim',
    ]);
    const gpus = await waitFor(
      'GPUs with users and jobs',
      async () => {
        const r = await fetch(`${stack.server.url}/api/v1/fleet`);
        const body = (await r.json()) as { nodes: { gpus: FleetGpu[] }[] };
        const all = body.nodes.flatMap((n) => n.gpus);
        return all.filter((g) => g.users?.length && g.jobs?.length).length >= 3 ? all : undefined;
      },
      30_000,
      250,
    );
    const counts = new Map<string, number>();
    for (const g of gpus) for (const u of g.users ?? []) counts.set(u, (counts.get(u) ?? 0) + 1);
    user = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    // A Kubernetes job when there is one (`namespace/pod-uid`: a slash in the id and the URL).
    const jobs = gpus.flatMap((g) => g.jobs ?? []);
    job = jobs.find((j) => j.includes('/')) ?? jobs[0]!;
    ({ page, errors } = await openPage(stack.browser, stack.server.url));
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await stack?.stop();
  });

  it('a shared URL selects a user and shows their GPUs live, with hints', async () => {
    await page.goto(`${stack.server.url}/me?user=${encodeURIComponent(user)}`);
    const view = page.locator('[data-testid="my-work-page"]');
    await waitFor(
      'selection from the URL',
      async () => (await view.getAttribute('data-value')) === user,
      10_000,
    );
    expect(await view.getAttribute('data-kind')).toBe('user');
    await page.locator('[data-testid="my-work-gpu"]').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('[data-testid="my-work-selected"]').textContent()).toContain(user);
    expect(await page.locator('[data-testid="hint"]').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="share-url"]').textContent()).toContain(
      `/me?user=${encodeURIComponent(user)}`,
    );
    // live: the utilization of the user's GPUs moves
    const cells = page.locator('[data-testid="my-work-gpu"]');
    const before = await cells.evaluateAll((els) => els.map((e) => e.getAttribute('data-util')).join());
    await waitFor(
      'a live change',
      async () =>
        (await cells.evaluateAll((els) => els.map((e) => e.getAttribute('data-util')).join())) !== before,
      20_000,
      500,
    );
    await screenshot(page, 'mywork-user-en');
  });

  it('remembers the choice: /me without a query comes back to it', async () => {
    await page.goto(`${stack.server.url}/me`);
    await waitFor('the remembered choice in the URL', () => queryOf(page, 'user') === user, 10_000);
    expect(await page.locator('[data-testid="my-work-page"]').getAttribute('data-value')).toBe(user);
  });

  it('chooses a job through the typeahead', async () => {
    await page.locator('[data-testid="my-work-kind"] [data-range="job"]').click();
    const input = page.locator('[data-testid="my-work-input"]');
    // The whole id leaves one suggestion: live updates re-sort a longer list under the pointer.
    await input.fill(job);
    const option = page.locator(`[data-testid="my-work-suggestion"][data-kind="job"][data-value="${job}"]`);
    await option.waitFor({ timeout: 5000 });
    await option.click();
    await waitFor('job in the URL', () => queryOf(page, 'job') === job, 5000);
    await page.locator('[data-testid="my-work-gpu"]').first().waitFor({ timeout: 10_000 });
    // keyboard: type, arrow down, enter
    await page.locator('[data-testid="my-work-kind"] [data-range="user"]').click();
    await input.fill(user);
    await input.press('ArrowDown');
    await input.press('Enter');
    await waitFor('user in the URL', () => queryOf(page, 'user') === user, 5000);
    // back to the job
    await page.goBack();
    await waitFor(
      'job after going back',
      async () => (await page.locator('[data-testid="my-work-page"]').getAttribute('data-value')) === job,
      5000,
    );
  });

  it('speaks Korean', async () => {
    await page.selectOption('[data-testid="language-switch"]', 'ko');
    await page.goto(`${stack.server.url}/me?user=${encodeURIComponent(user)}`);
    await page.locator('[data-testid="my-work-gpu"]').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('h1').first().textContent()).toBe('내 작업');
    expect(await page.locator('[data-testid="my-work-selected"]').textContent()).toContain('사용자');
    await screenshot(page, 'mywork-user-ko');
    await page.selectOption('[data-testid="language-switch"]', 'en');
  });

  it('nobody matching and nothing chosen are designed states', async () => {
    await page.goto(`${stack.server.url}/me?project=${encodeURIComponent('<img src=x onerror=alert(1)>')}`);
    await page.locator('[data-testid="detail-state"][data-state="empty"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('main img').count()).toBe(0);
    await page.locator('[data-testid="my-work-clear"]').click();
    await waitFor('no query', () => !page.url().includes('?'), 5000);
    expect(await page.locator('[data-testid="detail-state"]').textContent()).toContain('Nothing chosen');
    await screenshot(page, 'mywork-empty-en');
  });

  it('logged no errors', () => {
    expect(unexpectedErrors(errors)).toEqual([]);
  });
});
