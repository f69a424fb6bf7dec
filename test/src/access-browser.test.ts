import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from './support/browser.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { type ServerProc, startServer, startSim, stopAll } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

const ADMIN_TOKEN = 'browser-test-admin-token-0123456789abcdef';
const WALL_TOKEN = 'browser-test-wall-token-0123456789abcdef';
const VIEWER_TOKEN = 'browser-test-viewer-token-0123456789abcdef';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Every route of web/src/router.ts, with what shows that the view rendered. */
const ROUTES: Array<{ path: string; ready: string; chart?: string }> = [
  { path: '/', ready: '[data-testid="wall-canvas"]' },
  { path: '/projects', ready: '[data-testid="projects-page"]', chart: '.chart' },
  { path: '/alerts', ready: '[data-testid="alerts-page"]' },
  {
    path: '/node/sim-0001',
    ready: '[data-testid="node-gpu-row"]',
    chart: '[data-chart="utilization"] .chart-canvas',
  },
  {
    path: '/node/sim-0001/gpu/0',
    ready: '[data-testid="gpu-page"]',
    chart: '[data-chart="utilization"] .chart-canvas',
  },
  { path: '/me', ready: '[data-testid="my-work-page"]' },
  { path: '/trends', ready: '[data-testid="trends-page"]' },
];

interface Watch {
  /** `securitypolicyviolation` events and CSP console messages. */
  violations(): Promise<string[]>;
  errors: string[];
}

/**
 * Every view of the dashboard in Chromium under the server's Content-Security-Policy: zero
 * violations (collected in the page by an init script and from the console), and the header says
 * who is signed in.
 */
describe('dashboard under the Content-Security-Policy', () => {
  let influxd: TestInfluxd;
  let server: ServerProc;
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpupulse-access-browser-'));
    await writeFile(
      join(dir, 'access.yaml'),
      [
        'anonymous: display',
        'tokens:',
        `  - { name: ops-admin, role: admin, sha256: "${sha256(ADMIN_TOKEN)}" }`,
        `  - { name: wall-1, role: display, sha256: "${sha256(WALL_TOKEN)}" }`,
        '',
      ].join('\n'),
    );
    influxd = await startInfluxd();
    server = await startServer({
      GPUPULSE_INFLUX_URL: influxd.url,
      GPUPULSE_ACCESS_FILE: join(dir, 'access.yaml'),
    });
    startSim(server.url, ['--nodes', '3', '--gpus-per-node', '4', '--interval', '500', '--prefix', 'sim']);
    await waitFor(
      'simulated nodes',
      async () => {
        const r = await fetch(`${server.url}/api/v1/fleet`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        const body = (await r.json()) as { nodes: { node: string }[] };
        return body.nodes.length >= 3;
      },
      30_000,
      250,
    );
    // A few seconds of history for the charts.
    await new Promise((r) => setTimeout(r, 3000));
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await stopAll();
    await server?.stop();
    await influxd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    await context.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        w.__csp.push(
          `${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`,
        );
      });
      localStorage.setItem('gpupulse.locale', 'en');
    });
    return context;
  }

  function watch(page: Page): Watch {
    const consoleCsp: string[] = [];
    const errors: string[] = [];
    page.on('console', (m) => {
      const text = m.text();
      if (/Content Security Policy|Refused to (load|apply|execute|connect|frame)/i.test(text))
        consoleCsp.push(text);
      else if (m.type() === 'error') errors.push(text);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    return {
      errors,
      async violations() {
        const inPage = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp ?? []);
        return [...inPage, ...consoleCsp];
      },
    };
  }

  /** Opens each route, waits for it to render, hovers its chart (tooltips are DOM built under the CSP). */
  async function visitAll(page: Page, opts: { hoverCharts: boolean }): Promise<string[]> {
    const seen: string[] = [];
    for (const r of ROUTES) {
      const res = await page.goto(`${server.url}${r.path}`);
      expect(res?.status()).toBe(200);
      const csp = res?.headers()['content-security-policy'] ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      await page.locator(r.ready).first().waitFor({ timeout: 20_000 });
      if (opts.hoverCharts && r.chart) {
        const chart = page.locator(r.chart).first();
        await chart.waitFor({ timeout: 20_000 });
        const box = await chart.boundingBox();
        if (box) {
          // Move across the plot until ECharts shows its tooltip (data may start mid-axis).
          await waitFor(
            `a chart tooltip on ${r.path}`,
            async () => {
              for (const fx of [0.9, 0.75, 0.6, 0.5, 0.95]) {
                await page.mouse.move(box.x + box.width * fx, box.y + box.height * 0.5);
                if (
                  await page
                    .locator('.chart-tooltip')
                    .first()
                    .isVisible()
                    .catch(() => false)
                )
                  return true;
              }
              return false;
            },
            15_000,
            300,
          );
          seen.push(r.path);
        }
      }
      // Let late work (socket connect, history fetches, chart renders) happen on this view.
      await page.waitForTimeout(500);
    }
    return seen;
  }

  it('the collector works: an inline style and an inline script are reported', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${server.url}/alerts`);
    await page.locator('[data-testid="alerts-page"]').waitFor();
    await page.evaluate(() => {
      const div = document.createElement('div');
      div.innerHTML = '<span style="color: red">x</span>';
      document.body.append(div);
      const s = document.createElement('script');
      s.textContent = 'window.__inlineRan = true';
      document.body.append(s);
    });
    await expect.poll(async () => (await w.violations()).length).toBeGreaterThanOrEqual(2);
    const v = (await w.violations()).join('\n');
    expect(v).toMatch(/style-src/);
    expect(v).toMatch(/script-src/);
    expect(
      await page.evaluate(() => (window as unknown as { __inlineRan?: boolean }).__inlineRan),
    ).toBeUndefined();
    await context.close();
  });

  it('signed in (admin token session): every view, chart tooltips included, with zero CSP violations', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const w = watch(page);
    // The token is swapped for an HttpOnly session cookie; the address bar loses it.
    await page.goto(`${server.url}/?access_token=${ADMIN_TOKEN}`);
    expect(page.url()).not.toContain('access_token');
    await expect.poll(() => page.getByTestId('session-identity').textContent()).toBe('ops-admin (admin)');
    expect(await page.getByTestId('sign-out').count()).toBe(1);

    const hovered = await visitAll(page, { hoverCharts: true });
    expect(hovered).toEqual(['/projects', '/node/sim-0001', '/node/sim-0001/gpu/0']);
    // The admin sees processes with command lines, on a node that has some now (the simulator's
    // jobs come and go at random: a node whose GPUs are all free has no process rows to show).
    const busy = await waitFor(
      'a simulated node with processes',
      async () => {
        const r = await fetch(`${server.url}/api/v1/fleet`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        const body = (await r.json()) as { nodes: { node: string; gpus: { processCount?: number }[] }[] };
        return body.nodes.find((n) => n.gpus.some((g) => (g.processCount ?? 0) > 0))?.node;
      },
      60_000,
      500,
    );
    await page.goto(`${server.url}/node/${busy}`);
    await page
      .locator('[data-testid="process-row"]')
      .first()
      .waitFor({ timeout: 20_000 })
      .catch(async (err: Error) => {
        const table = await page
          .getByTestId('process-table')
          .first()
          .textContent()
          .catch(() => '(no table)');
        throw new Error(`${err.message}\nthe process table of ${busy} showed: ${table}`);
      });
    expect(await page.getByTestId('people-hidden').count()).toBe(0);
    expect(await page.getByTestId('session-identity').textContent()).toBe('ops-admin (admin)');
    await screenshot(page, 'access-admin-node');

    expect(await w.violations()).toEqual([]);
    expect(w.errors).toEqual([]);
    await context.close();
  });

  it('anonymous (display): every view loads with zero violations and says "sign in" where users and processes would be', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const w = watch(page);
    await visitAll(page, { hoverCharts: false });
    await page.goto(`${server.url}/node/sim-0001`);
    await page.locator('[data-testid="node-gpu-row"]').first().waitFor({ timeout: 20_000 });
    expect(await page.getByTestId('session-identity').textContent()).toBe('Not signed in (display)');
    await expect
      .poll(() => page.getByTestId('people-hidden').textContent(), { timeout: 15_000 })
      .toBe('Sign in to see users and processes.');
    expect(await page.locator('[data-testid="process-row"]').count()).toBe(0);
    expect(await page.locator('[data-field="users"]').count()).toBe(0);
    await screenshot(page, 'access-display-node');

    expect(await w.violations()).toEqual([]);
    // The only errors: the processes endpoint refusing this role (the page says so instead).
    expect(w.errors.filter((e) => !/status of 401|status of 403/.test(e))).toEqual([]);
    await context.close();
  });

  it('a wall opened once with a display token keeps working from its cookie, with zero violations', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${server.url}/?kiosk=1&access_token=${WALL_TOKEN}`);
    expect(new URL(page.url()).search).toBe('?kiosk=1');
    await page.locator('[data-testid="wall-canvas"]').waitFor({ timeout: 20_000 });
    expect(await page.getByTestId('session-status').count()).toBe(0); // kiosk: no header
    expect(await page.getByTestId('sign-in-screen').count()).toBe(0);
    const me = await page.evaluate(() => fetch('/api/v1/me').then((r) => r.json()));
    expect(me).toMatchObject({ role: 'display', name: 'wall-1' });
    // A reload (a wall rebooting) needs no token: the cookie carries it.
    await page.reload();
    await page.locator('[data-testid="wall-canvas"]').waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => fetch('/api/v1/me').then((r) => r.json()))).toMatchObject({
      name: 'wall-1',
    });
    expect(await w.violations()).toEqual([]);
    expect(w.errors).toEqual([]);
    await context.close();
  });
  it("a viewer sees their own processes' command lines and is told another user's are hidden", async () => {
    interface Proc {
      pid: number;
      user?: string | null;
      cmdline?: string | null;
    }
    const admin = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
    const fleet = (await (await fetch(`${server.url}/api/v1/fleet`, admin)).json()) as {
      nodes: { node: string }[];
    };
    const byNode = new Map<string, Proc[]>();
    for (const n of fleet.nodes) {
      const r = (await (await fetch(`${server.url}/api/v1/nodes/${n.node}/processes`, admin)).json()) as {
        processes: Proc[];
      };
      byNode.set(
        n.node,
        r.processes.filter((p) => p.user && p.cmdline),
      );
    }
    const me = [...byNode.values()].flat()[0]?.user;
    expect(me).toBeTruthy();
    const ownNode = [...byNode].find(([, ps]) => ps.some((p) => p.user === me))![0];
    const otherNode = [...byNode].find(([, ps]) => ps.some((p) => p.user !== me))?.[0];
    expect(otherNode, 'the simulator runs jobs of more than one user').toBeTruthy();
    await writeFile(
      join(dir, 'access.yaml'),
      [
        'anonymous: display',
        'tokens:',
        `  - { name: ops-admin, role: admin, sha256: "${sha256(ADMIN_TOKEN)}" }`,
        `  - { name: wall-1, role: display, sha256: "${sha256(WALL_TOKEN)}" }`,
        `  - { name: viewer-1, role: viewer, user: "${me}", sha256: "${sha256(VIEWER_TOKEN)}" }`,
        '',
      ].join('\n'),
    );
    await waitFor(
      'the access file reload',
      async () => {
        const r = await fetch(`${server.url}/api/v1/me`, {
          headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
        });
        return ((await r.json()) as { role?: string }).role === 'viewer';
      },
      15_000,
      200,
    );
    const context = await newContext();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${server.url}/?access_token=${VIEWER_TOKEN}`);
    await expect.poll(() => page.getByTestId('session-identity').textContent()).toBe('viewer-1 (viewer)');

    const checked = { own: 0, other: 0 };
    for (const node of new Set([ownNode, otherNode!])) {
      await page.goto(`${server.url}/node/${node}`);
      await page.locator('[data-testid="process-row"]').first().waitFor({ timeout: 20_000 });
      for (const p of byNode.get(node)!) {
        const row = page.locator(`[data-testid="process-row"][data-pid="${p.pid}"]`);
        if ((await row.count()) === 0) continue; // the job ended meanwhile
        const hidden = row.getByTestId('command-hidden');
        if (p.user === me) {
          expect(await hidden.count()).toBe(0);
          expect(await row.locator('code').textContent()).toBe(p.cmdline);
          checked.own++;
        } else {
          expect(await hidden.textContent()).toContain("command line hidden: another user's process");
          expect(await row.textContent()).not.toContain(p.cmdline!);
          checked.other++;
        }
      }
    }
    expect(checked.own).toBeGreaterThan(0);
    expect(checked.other).toBeGreaterThan(0);
    await screenshot(page, 'access-viewer-node');
    expect(await w.violations()).toEqual([]);
    expect(w.errors).toEqual([]);
    await context.close();
  });

  // Last: it changes the access file for the rest of this server's life.
  it('role none: the socket is refused and the page shows a sign-in screen, not a broken dashboard', async () => {
    await writeFile(
      join(dir, 'access.yaml'),
      [
        'anonymous: none',
        'tokens:',
        `  - { name: wall-1, role: display, sha256: "${sha256(WALL_TOKEN)}" }`,
        '',
      ].join('\n'),
    );
    await waitFor(
      'the access file reload',
      async () => (await (await fetch(`${server.url}/api/v1/me`)).json()).role === 'none',
      15_000,
      200,
    );
    const context = await newContext();
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${server.url}/`);
    await page.getByTestId('sign-in-screen').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid="wall-canvas"]').count()).toBe(0);
    expect(await page.locator('h1').first().textContent()).toBe('Sign-in needed');
    // No single sign-on configured: it says whom to ask rather than offering a dead link.
    expect(await page.getByTestId('sign-in-screen-link').count()).toBe(0);
    await screenshot(page, 'access-none-sign-in-screen');
    expect(await w.violations()).toEqual([]);
    await context.close();
  });
});
