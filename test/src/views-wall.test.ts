import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, scrollToTop, showNodeList, watchErrors } from './support/browser.ts';
import { type Proc, startSim, stopAll } from './support/processes.ts';
import { startServerOnPort } from './support/server-on-port.ts';
import { waitFor } from './support/wait.ts';
import {
  attr,
  canvasColorShare,
  HOSTILE_PREFIX,
  hoverSomeTile,
  KOREAN_NODE,
  SIM_USER_SAMPLE,
  startViewsFleet,
  textBoxes,
  type ViewsFleet,
  viewportShot,
  WALL_MIN_TEXT_FRACTION,
  WALL_SIZES,
} from './support/wall-views.ts';

// The wall view in real Chromium, served and fed by the real server, two simulators (one with a
// hostile name prefix) and one real agent with a Korean, quoted node name.
/** 6 rack nodes × 8, 2 hostile-named nodes × 4, the agent's capture has 1 GPU. */
const AGENT_GPUS = 1;
const ALL_GPUS = 6 * 8 + 2 * 4 + AGENT_GPUS;

describe('wall view in headless Chromium', () => {
  let fleet: ViewsFleet;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const dialogs: string[] = [];

  beforeAll(async () => {
    fleet = await startViewsFleet();
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    errors = watchErrors(page);
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(fleet.server.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    if (fleet) await rm(fleet.dataDir, { recursive: true, force: true });
  });

  const row = (name: string) => page.locator(`[data-testid="node-row"][data-node=${attr(name)}]`);

  it('renders every GPU on one canvas, the headline, and the node list', async () => {
    await showNodeList(page);
    for (const n of [...fleet.simNodes, ...fleet.hostileNodes, KOREAN_NODE])
      await row(n).waitFor({ timeout: 30_000 });
    const cells = ALL_GPUS;
    await waitFor(
      'every GPU cell',
      async () => (await page.locator('[data-testid="gpu-cell"]').count()) === cells,
    );
    await waitFor(
      'the canvas to lay out every GPU',
      async () =>
        (await page.locator('[data-testid="gpu-grid"]').getAttribute('data-gpus')) === String(cells),
    );
    expect(await page.locator('[data-testid="gpu-grid"] canvas').count()).toBe(1);
    expect(
      await page.locator('[data-testid="headline-figure"][data-key="gpusTotal"]').getAttribute('data-value'),
    ).toBe(String(cells));
    const power = await page
      .locator('[data-testid="headline-figure"][data-key="powerKilowatts"]')
      .getAttribute('data-value');
    expect(Number(power)).toBeGreaterThan(0);
    await page.locator('[data-testid="alert-ticker"]').waitFor();
    await page.locator('[data-testid="wall-clock"]').waitFor();
    expect(await page.locator('[data-testid="freshness"]').getAttribute('data-stale')).toBe('false');
    expect(existsSync(await screenshot(page, 'views-wall-en'))).toBe(true);
  });

  it('hostile and Korean node names render as plain text', async () => {
    for (const n of [...fleet.hostileNodes, KOREAN_NODE])
      expect(await row(n).locator('.node-name').textContent()).toBe(n);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(await page.evaluate(() => document.body.innerHTML.includes('<img src=x'))).toBe(false);
    expect(
      await page.evaluate(() => document.body.textContent?.includes('<img src=x onerror=alert(1)>')),
    ).toBe(true);
  });

  it('live values change on screen and on the canvas', async () => {
    await showNodeList(page); // the full-page shot may leave the page scrolled back to the top
    const cells = page.locator('[data-testid="gpu-cell"]');
    const before = await cells.allTextContents();
    const updates = await page.evaluate(
      () => (window as unknown as { __gpupulseWall: { updates: number } }).__gpupulseWall.updates,
    );
    await waitFor(
      'a GPU value to change',
      async () => {
        const after = await cells.allTextContents();
        return after.length === before.length && after.some((t, i) => t !== before[i]);
      },
      20_000,
      500,
    );
    const later = await page.evaluate(
      () => (window as unknown as { __gpupulseWall: { updates: number } }).__gpupulseWall.updates,
    );
    expect(later).toBeGreaterThan(updates);
  });

  it('off screen the node list keeps still; scrolled into view it is current at once', async () => {
    const cellUtils = () =>
      page
        .locator('[data-testid="gpu-cell"]')
        .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-gpu')}=${e.getAttribute('data-util')}`));
    const fleetUtils = async () => {
      const body = (await (await fetch(`${fleet.server.url}/api/v1/fleet`)).json()) as {
        nodes: { node: string; gpus: { index: number; utilizationGpuPercent: number | null }[] }[];
      };
      return new Set(
        body.nodes.flatMap((n) => n.gpus.map((g) => `${n.node}/${g.index}=${g.utilizationGpuPercent ?? ''}`)),
      );
    };
    await scrollToTop(page);
    await page.locator('[data-testid="node-list"][data-on-screen="false"]').waitFor({ timeout: 10_000 });
    const frozen = await cellUtils();
    const wallUpdates = () =>
      page.evaluate(
        () => (window as unknown as { __gpupulseWall: { updates: number } }).__gpupulseWall.updates,
      );
    const drawn = await wallUpdates();
    // The fleet moves on (the server's values no longer all those the list shows) and the canvas
    // draws it, while the rows below stay as they were.
    await waitFor(
      'the fleet to move on past the rows off screen',
      async () => {
        const now = await fleetUtils();
        return frozen.some((c) => !now.has(c)) && (await wallUpdates()) >= drawn + 2;
      },
      20_000,
      500,
    );
    expect(await cellUtils()).toEqual(frozen);
    await showNodeList(page);
    await waitFor(
      'the rows to show the current values',
      async () => (await cellUtils()).some((c, i) => c !== frozen[i]),
      5_000,
      100,
    );
  });

  it('a tooltip on hover names the node and GPU; privacy hides user names', async () => {
    const title = await hoverSomeTile(page);
    expect(title).toMatch(/GPU \d+/);
    expect(title.includes(HOSTILE_PREFIX) || title.includes('rack-a') || title.includes(KOREAN_NODE)).toBe(
      true,
    );
    await viewportShot(page, 'views-wall-tooltip');
    await page.mouse.move(0, 0);

    const toggle = page.locator('[data-testid="privacy-toggle"]');
    if ((await toggle.getAttribute('data-privacy')) === 'true') await toggle.click();
    await page.locator('[data-testid="privacy-toggle"][data-privacy="false"]').waitFor();
    await toggle.click();
    await page.locator('[data-testid="privacy-toggle"][data-privacy="true"]').waitFor();
    await hoverSomeTile(page);
    const text = (await page.locator('body').textContent()) ?? '';
    for (const u of SIM_USER_SAMPLE) expect(text).not.toContain(u);
    await page.mouse.move(0, 0);
  });

  it('switches the tile colour between utilization and temperature', async () => {
    await page.locator('[data-testid="color-mode-temperature"]').click();
    await page.locator('[data-testid="gpu-grid"][data-mode="temperature"]').waitFor();
    await screenshot(page, 'views-wall-temperature');
    await page.locator('[data-testid="color-mode-utilization"]').click();
    await page.locator('[data-testid="gpu-grid"][data-mode="utilization"]').waitFor();
  });

  it('the language switch changes the text (Korean)', async () => {
    const label = page.locator('[data-testid="headline"] .gpus h2');
    expect(await label.textContent()).toContain('GPUs');
    await page.locator('[data-testid="language-switch"]').selectOption('ko');
    await waitFor('Korean headline', async () =>
      ((await page.locator('[data-testid="headline"]').textContent()) ?? '').includes('사용 중'),
    );
    expect(await page.locator('html').getAttribute('lang')).toBe('ko');
    await screenshot(page, 'views-wall-ko');
    await page.locator('[data-testid="language-switch"]').selectOption('en');
    await waitFor('English again', async () =>
      ((await page.locator('[data-testid="headline"]').textContent()) ?? '').includes('In use'),
    );
  });

  it('navigates to projects and alerts and back', async () => {
    await page.locator('[data-testid="nav-projects"]').click();
    await page.locator('[data-testid="projects-page"]').waitFor();
    expect(new URL(page.url()).pathname).toBe('/projects');
    await page.locator('[data-testid="nav-alerts"]').click();
    await page.locator('[data-testid="alerts-page"]').waitFor();
    await page.locator('[data-testid="nav-cluster"]').click();
    await page.locator('[data-testid="wall-page"]').waitFor();
    await row(fleet.simNodes[0]!).waitFor();
  });

  it('kiosk: no chrome; survives a server restart on the same port and drops nodes the new server does not know', async () => {
    const kiosk = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    const kioskErrors = watchErrors(kiosk);
    await kiosk.goto(`${fleet.server.url}/?kiosk=1`);
    await kiosk.locator('[data-testid="kiosk-bar"]').waitFor();
    expect(await kiosk.locator('.app-header').count()).toBe(0);
    expect(await kiosk.locator('[data-testid="node-list"]').count()).toBe(0);
    expect(await kiosk.locator('[data-testid="privacy-toggle"]').count()).toBe(0);
    const total = kiosk.locator('[data-testid="headline-figure"][data-key="gpusTotal"]');
    await waitFor(
      'all GPUs on the kiosk',
      async () => (await total.getAttribute('data-value')) === String(ALL_GPUS),
    );
    await screenshot(kiosk, 'views-wall-kiosk-en');

    // The agent goes away for good, then the server restarts: the new server never hears of it.
    await fleet.agent.stop();
    const port = fleet.server.port;
    await fleet.server.stop();
    const state = kiosk.locator('[data-testid="connection-state"]');
    await waitFor(
      'the kiosk to notice',
      async () => (await state.getAttribute('data-state')) !== 'connected',
      20_000,
      200,
    );
    await waitFor(
      'stale data shown as stale',
      async () => (await kiosk.locator('[data-testid="freshness"]').getAttribute('data-stale')) === 'true',
      20_000,
      250,
    );
    await screenshot(kiosk, 'views-wall-kiosk-reconnecting');
    fleet.server = await startServerOnPort({ port, env: fleet.env, dataDir: fleet.dataDir });

    await waitFor(
      'reconnected',
      async () => (await state.getAttribute('data-state')) === 'connected',
      40_000,
      250,
    );
    await waitFor(
      'the fleet back without the departed agent',
      async () => (await total.getAttribute('data-value')) === String(ALL_GPUS - AGENT_GPUS),
      60_000,
      500,
    );
    await waitFor(
      'fresh again',
      async () => (await kiosk.locator('[data-testid="freshness"]').getAttribute('data-stale')) === 'false',
      20_000,
      250,
    );
    expect(
      await kiosk.evaluate(
        () => (window as unknown as { __gpupulseWall: { nodes: number } }).__gpupulseWall.nodes,
      ),
    ).toBe(8);
    expect(await kiosk.locator('text=/log ?in|password|sign in/i').count()).toBe(0);
    await screenshot(kiosk, 'views-wall-kiosk-after-restart');
    await kiosk.locator('[data-testid="language-switch"]').count(); // no chrome: no switch on the kiosk
    await kiosk.evaluate(() => localStorage.setItem('gpupulse.locale', 'ko'));
    await kiosk.reload();
    await waitFor('Korean kiosk', async () =>
      ((await kiosk.locator('[data-testid="headline"]').textContent()) ?? '').includes('사용 중'),
    );
    await screenshot(kiosk, 'views-wall-kiosk-ko');
    await kiosk.evaluate(() => localStorage.removeItem('gpupulse.locale'));
    expect(kioskErrors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket/.test(e))).toEqual([]);
    await kiosk.close();
  });

  it('kiosk rotation moves to the next view, keeping the query', async () => {
    const kiosk = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await kiosk.goto(`${fleet.server.url}/?kiosk=1&rotate=5`);
    await kiosk.locator('[data-testid="wall-page"]').waitFor();
    await waitFor('rotation to /projects', () => new URL(kiosk.url()).pathname === '/projects', 15_000, 250);
    const q = new URL(kiosk.url()).searchParams;
    expect(q.get('kiosk')).toBe('1');
    expect(q.get('rotate')).toBe('5');
    await kiosk.locator('[data-testid="projects-page"]').waitFor();
    await kiosk.close();
  });

  it('the page logged no errors', () => {
    // The restart test stops the server this page is connected to as well: refused reconnects are expected.
    expect(errors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket/.test(e))).toEqual([]);
  });
});

// Issue 11, "the wall names what it shows": at 1080p and 4K, English and Korean, kiosk and not.
// One more simulator whose two nodes go away (offline) and one that is frozen (SIGSTOP: still
// connected, silent → stale) so both states are on screen.
describe('wall: project key, offline and stale, text sizes, no overflow, at 1080p and 4K', () => {
  let fleet: ViewsFleet;
  let browser: Browser;
  let down: Proc;
  let frozen: Proc;
  let names: Record<'en' | 'ko', Set<string>>;
  let ids: Set<string>;

  beforeAll(async () => {
    fleet = await startViewsFleet({ rackNodes: 4 });
    down = startSim(fleet.server.url, [
      '--nodes',
      '2',
      '--gpus-per-node',
      '8',
      '--interval',
      '1000',
      '--prefix',
      'down',
    ]);
    frozen = startSim(fleet.server.url, [
      '--nodes',
      '1',
      '--gpus-per-node',
      '8',
      '--interval',
      '1000',
      '--prefix',
      'frozen',
    ]);
    const meta = (await (await fetch(`${fleet.server.url}/api/v1/projects/meta`)).json()) as {
      projects: { id: string; name: { en?: string; ko?: string } }[];
    };
    ids = new Set(meta.projects.map((p) => p.id));
    names = {
      en: new Set(meta.projects.map((p) => p.name.en ?? p.id)),
      ko: new Set(meta.projects.map((p) => p.name.ko ?? p.name.en ?? p.id)),
    };
    browser = await launchBrowser();
    // Both extra simulators reported: then one leaves, one freezes.
    await waitFor(
      'the extra nodes at the server',
      async () =>
        ((await (await fetch(`${fleet.server.url}/api/v1/health`)).json()) as { gpus: number }).gpus >=
        4 * 8 + 2 * 4 + AGENT_GPUS + 3 * 8,
      60_000,
      500,
    );
    await down.stop();
  });

  const statusOf = async (node: string) => {
    const f = (await (await fetch(`${fleet.server.url}/api/v1/fleet`)).json()) as {
      nodes: { node: string; status: string }[];
    };
    return f.nodes.find((n) => n.node === node)?.status ?? 'absent';
  };
  /**
   * Freezes the `frozen` simulator (SIGSTOP: connected, silent) until its node reads stale. A node
   * frozen for long is disconnected by the server's ping timeout (then offline): thaw it first.
   */
  async function makeStale(): Promise<void> {
    frozen.child.kill('SIGCONT');
    await waitFor(
      'the frozen node online',
      async () => (await statusOf('frozen-0001')) === 'online',
      30_000,
      250,
    );
    frozen.child.kill('SIGSTOP');
    await waitFor(
      'the frozen node stale',
      async () => (await statusOf('frozen-0001')) === 'stale',
      15_000,
      250,
    );
  }

  afterAll(async () => {
    frozen?.child.kill('SIGCONT');
    await browser?.close();
    await stopAll();
    if (fleet) await rm(fleet.dataDir, { recursive: true, force: true });
  });

  for (const size of WALL_SIZES)
    for (const lang of ['en', 'ko'] as const)
      for (const kiosk of [true, false])
        it(`${kiosk ? 'kiosk' : 'wall'} ${size.name} ${lang}`, async () => {
          await makeStale();
          const page = await browser.newPage({ viewport: { width: size.width, height: size.height } });
          const errors = watchErrors(page);
          await page.addInitScript((l) => localStorage.setItem('gpupulse.locale', l), lang);
          await page.goto(`${fleet.server.url}/${kiosk ? '?kiosk=1' : ''}`);
          const probe = () =>
            page.evaluate(() => {
              const w = (
                window as unknown as {
                  __gpupulseWall?: {
                    nodes: number;
                    tile: number;
                    minText: number;
                    fonts: Record<string, number> | null;
                    locate(n: string, p: number): { x: number; y: number; size: number } | null;
                  };
                }
              ).__gpupulseWall;
              if (!w) return { nodes: -1, tile: 0, minText: 0, fonts: null, offline: null, stale: null };
              return {
                nodes: w.nodes,
                tile: w.tile,
                minText: w.minText,
                fonts: w.fonts ? { ...w.fonts } : null,
                offline: w.locate('down-0001', 0),
                stale: w.locate('frozen-0001', 0),
              };
            });
          try {
            await waitFor(
              'every node on the wall',
              async () => (await probe()).nodes === 4 + 2 + 1 + 2 + 1,
              30_000,
              250,
            );
          } catch (e) {
            await viewportShot(
              page,
              `views-wall-key-${kiosk ? 'kiosk' : 'page'}-${size.name}-${lang}-failed`,
            );
            throw new Error(`${String(e)}; wall probe: ${JSON.stringify(await probe())}`);
          }
          const html = page.locator('html');
          await waitFor('the language', async () => (await html.getAttribute('lang')) === lang, 10_000, 100);

          // The key: display names from the projects file (never ids), with colour and GPUs held.
          const entries = page.locator('[data-testid="wall-key-entry"]');
          await waitFor('the project key', async () => (await entries.count()) >= 2, 20_000, 250);
          await expect(page.locator('[data-testid="wall-key"]').isVisible()).resolves.toBe(true);
          const shown = await entries.evaluateAll((els) =>
            els.map((e) => ({
              id: e.getAttribute('data-project') ?? '',
              name: e.querySelector('.name')?.textContent?.trim() ?? '',
              gpus: Number(e.getAttribute('data-gpus')),
              swatch: getComputedStyle(e.querySelector('.swatch')!).backgroundColor,
            })),
          );
          const known = shown.filter((e) => ids.has(e.id));
          expect(known.length).toBeGreaterThanOrEqual(1);
          for (const e of known) {
            expect(names[lang].has(e.name)).toBe(true);
            expect(e.gpus).toBeGreaterThan(0);
            expect(e.swatch).not.toBe('rgba(0, 0, 0, 0)');
          }

          // Offline and stale tiles: bright stripes in the status colour, labelled.
          let shares = { red: 0, amber: 0 };
          try {
            await waitFor(
              'the offline and stale tiles',
              async () => {
                const q = await probe();
                if (!q.offline || !q.stale) return false;
                shares = {
                  red: await canvasColorShare(page, q.offline, [0xff, 0x6b, 0x6b]),
                  amber: await canvasColorShare(page, q.stale, [0xff, 0xc9, 0x33]),
                };
                return shares.red > 0.15 && shares.amber > 0.15;
              },
              30_000,
              500,
            );
          } finally {
            await viewportShot(page, `views-wall-key-${kiosk ? 'kiosk' : 'page'}-${size.name}-${lang}`);
          }
          expect(shares.red).toBeGreaterThan(0.15);
          expect(shares.amber).toBeGreaterThan(0.15);
          const p = await probe();
          expect(p.fonts?.state ?? 0).toBeGreaterThanOrEqual(p.minText);
          await expect(
            page.locator('[data-testid="wall-legend"] [data-state="offline"]').isVisible(),
          ).resolves.toBe(true);

          // Minimum text size: 1 % of the viewport height, on the canvas and (kiosk) everywhere.
          const min = Math.max(11, Math.ceil(size.height * WALL_MIN_TEXT_FRACTION));
          expect(p.minText).toBe(min);
          for (const [k, px] of Object.entries(p.fonts ?? {}))
            if (px > 0) expect(px, k).toBeGreaterThanOrEqual(min);
          const boxes = await textBoxes(
            page,
            kiosk ? '[data-testid="wall-page"]' : '[data-testid="cluster-page"]',
          );
          expect(boxes.length).toBeGreaterThan(10);
          for (const b of boxes) expect(b.overflow, `overflows: ${b.text}`).toBe(false);
          const keyBoxes = await textBoxes(page, '[data-testid="wall-key"]');
          const legendBoxes = await textBoxes(page, '[data-testid="wall-legend"]');
          for (const b of [...keyBoxes, ...legendBoxes])
            expect(b.fontPx, b.text).toBeGreaterThanOrEqual(min - 0.5);
          if (kiosk) for (const b of boxes) expect(b.fontPx, b.text).toBeGreaterThanOrEqual(min - 0.5);

          // Headline headings on one line ("CLUSTER UTILIZATION" must not wrap).
          const lines = await page.locator('[data-testid="headline"] h2').evaluateAll((els) =>
            els.map((h) => {
              const r = document.createRange();
              r.selectNodeContents(h.firstChild ?? h);
              const tops = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
              return { text: h.textContent?.trim() ?? '', lines: tops.size };
            }),
          );
          for (const l of lines) expect(l.lines, l.text).toBe(1);

          const fit = await page.evaluate(() => {
            const box = (sel: string) => document.querySelector(sel)?.getBoundingClientRect();
            const legend = box('[data-testid="wall-legend"]');
            const key = box('[data-testid="wall-key"]');
            const grid = box('[data-testid="gpu-grid"]');
            return {
              scrollH: document.documentElement.scrollHeight,
              scrollW: document.documentElement.scrollWidth,
              legendBottom: legend?.bottom ?? 1e9,
              keyBottom: key?.bottom ?? 1e9,
              keyRight: key?.right ?? 1e9,
              gridBottom: grid?.bottom ?? 0,
            };
          });
          // The legend and the key are on screen without scrolling; kiosk fits the viewport.
          expect(fit.legendBottom).toBeLessThanOrEqual(size.height);
          expect(fit.keyBottom).toBeLessThanOrEqual(size.height);
          expect(fit.keyRight).toBeLessThanOrEqual(size.width);
          if (kiosk) {
            expect(fit.scrollH).toBeLessThanOrEqual(size.height);
            expect(fit.scrollW).toBeLessThanOrEqual(size.width);
          } else {
            // The wall uses the height it has: no empty bottom third at 4K.
            expect(fit.legendBottom).toBeGreaterThan(size.height * 0.85);
          }
          await viewportShot(page, `views-wall-key-${kiosk ? 'kiosk' : 'page'}-${size.name}-${lang}`);
          expect(errors).toEqual([]);
          await page.close();
        });
});
