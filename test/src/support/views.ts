import type { Browser, Page } from 'playwright-core';
import { launchBrowser, watchErrors } from './browser.ts';
import { startInfluxd, type TestInfluxd } from './influxd.ts';
import { type ServerProc, startServer } from './processes.ts';

/** A real server on a private real influxd, and a browser; what the view tests share. */
export interface ViewsStack {
  influxd: TestInfluxd;
  server: ServerProc;
  browser: Browser;
  stop(): Promise<void>;
}

export async function startViewsStack(env: Record<string, string> = {}): Promise<ViewsStack> {
  const influxd = await startInfluxd();
  const server = await startServer({ GPUPULSE_INFLUX_URL: influxd.url, ...env });
  const browser = await launchBrowser();
  return {
    influxd,
    server,
    browser,
    async stop() {
      await browser.close().catch(() => {});
      await server.stop();
      await influxd.stop();
    },
  };
}

/** A page with a fixed locale and theme in localStorage, and its console errors collected. */
export async function openPage(
  browser: Browser,
  origin: string,
  options: { locale?: 'en' | 'ko'; theme?: 'dark' | 'light'; width?: number; height?: number } = {},
): Promise<{ page: Page; errors: string[]; dialogs: string[] }> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1440, height: options.height ?? 1000 },
    acceptDownloads: true,
  });
  await context.addInitScript(
    ([locale, theme]) => {
      if (!sessionStorage.getItem('gpupulse.test.init')) {
        sessionStorage.setItem('gpupulse.test.init', '1');
        localStorage.setItem('gpupulse.locale', locale);
        localStorage.setItem('gpupulse.theme', theme);
      }
    },
    [options.locale ?? 'en', options.theme ?? 'dark'] as const,
  );
  const page = await context.newPage();
  const errors = watchErrors(page);
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(`${origin}/`);
  return { page, errors, dialogs };
}

/** Console errors other than expected 404s of endpoints the views probe for. */
export function unexpectedErrors(errors: readonly string[]): string[] {
  return errors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e));
}
