import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WhoAmI } from '@gpupulse/protocol';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from './support/browser.ts';
import {
  OIDC_CLIENT_ID,
  OIDC_CLIENT_SECRET,
  type OidcUser,
  startOidcProvider,
  type TestOidcProvider,
} from './support/oidc-provider.ts';
import { type ServerProc, startServer } from './support/processes.ts';
import { freePort, waitFor } from './support/wait.ts';

/**
 * Single sign-on end to end: a real OpenID Provider (oidc-provider) on 127.0.0.1, the real server
 * with an access file naming it, and real Chromium typing into the provider's login form.
 * alice is in `gpu-ops` (admin), bob in `students` (viewer), carol in no mapped group.
 */
describe('OIDC sign-in in Chromium against a real OpenID Provider', () => {
  let provider: TestOidcProvider;
  let server: ServerProc;
  let browser: Browser;
  let dir: string;
  let app: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpupulse-oidc-'));
    const port = await freePort();
    app = `http://127.0.0.1:${port}`;
    provider = await startOidcProvider(app);
    await writeFile(join(dir, 'oidc-secret'), `${OIDC_CLIENT_SECRET}\n`, { mode: 0o600 });
    await writeFile(
      join(dir, 'access.yaml'),
      [
        'anonymous: display',
        'oidc:',
        `  issuer: ${provider.issuer}`,
        `  clientId: ${OIDC_CLIENT_ID}`,
        `  clientSecretFile: ${join(dir, 'oidc-secret')}`,
        '  scopes: [openid, profile, groups]',
        '  roles: { admin: [gpu-ops], viewer: [students] }',
        '',
      ].join('\n'),
    );
    server = await startServer({ GPUPULSE_ACCESS_FILE: join(dir, 'access.yaml') }, { port });
    browser = await launchBrowser();
  }, 90_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await server?.stop();
    await provider?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh browser profile; requests off this machine (the provider pages' web fonts) are cut. */
  async function newPage(
    locale: 'en' | 'ko' = 'en',
  ): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (r) => r.abort());
    await context.addInitScript((l) => {
      if (!sessionStorage.getItem('gpupulse.test.init')) {
        sessionStorage.setItem('gpupulse.test.init', '1');
        localStorage.setItem('gpupulse.locale', l);
      }
    }, locale);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // The dashboard's own errors; the provider's pages are not ours.
      if (m.type() === 'error' && (m.location().url ?? '').startsWith(app)) errors.push(m.text());
    });
    return { context, page, errors };
  }

  const whoAmI = (page: Page): Promise<WhoAmI> =>
    page.evaluate(() =>
      fetch('/api/v1/me', { credentials: 'same-origin' }).then((r) => r.json() as Promise<WhoAmI>),
    );

  /** The provider's own forms: login (any password), then consent when asked. */
  async function signInAtProvider(page: Page, user: OidcUser): Promise<void> {
    await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
    await page.locator('input[name="login"]').fill(user);
    await page.locator('input[name="password"]').fill('any password will do');
    await page.locator('button[type="submit"]').click();
    await waitFor(
      'the dashboard or the consent form',
      async () => {
        if (new URL(page.url()).origin === app) return true;
        const consent = page.getByRole('button', { name: 'Continue' });
        if (await consent.isVisible().catch(() => false)) {
          await consent.click();
          return true;
        }
        return false;
      },
      15_000,
    );
    await page.waitForURL((u) => u.origin === app, { timeout: 15_000 });
  }

  it('anonymous visitors see the display role and a "Sign in" link', async () => {
    const { context, page, errors } = await newPage();
    await page.goto(`${app}/`);
    const identity = page.getByTestId('session-identity');
    await expect.poll(() => identity.textContent()).toBe('Not signed in (display)');
    await expect.poll(() => page.getByTestId('sign-in').count()).toBe(1);
    expect(await whoAmI(page)).toEqual({
      role: 'display',
      user: null,
      name: null,
      via: 'anonymous',
      loginAvailable: true,
    });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('alice signs in through the provider form: "alice (admin)", /api/v1/me says admin, sign-out ends both sessions', async () => {
    const { context, page, errors } = await newPage();
    await page.goto(`${app}/`);
    await page.getByTestId('sign-in').click();
    await signInAtProvider(page, 'alice');

    const identity = page.getByTestId('session-identity');
    await expect.poll(() => identity.textContent(), { timeout: 15_000 }).toBe('alice (admin)');
    expect(new URL(page.url()).pathname).toBe('/');
    expect(await whoAmI(page)).toEqual({
      role: 'admin',
      user: 'alice',
      name: 'alice',
      via: 'oidc',
      loginAvailable: true,
    });
    // The session is an HttpOnly, SameSite=Lax cookie the page's scripts cannot read.
    const cookie = (await context.cookies(app)).find((c) => c.name === 'gpupulse_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('gpupulse_session');
    // The login cookie is single use: gone once the callback ran.
    expect((await context.cookies(app)).some((c) => c.name === 'gpupulse_login' && c.value)).toBe(false);
    await screenshot(page, 'access-oidc-alice-admin');

    // Sign out: our cookie goes, then the provider's own session (RP-initiated logout), then back.
    await page.getByTestId('sign-out').click();
    await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL((u) => u.origin === app, { timeout: 15_000 });
    await expect.poll(() => identity.textContent(), { timeout: 15_000 }).toBe('Not signed in (display)');
    expect(await whoAmI(page)).toMatchObject({ role: 'display', via: 'anonymous', user: null });
    expect((await context.cookies(app)).some((c) => c.name === 'gpupulse_session')).toBe(false);
    expect(provider.events).toContain('end_session.success');

    // The provider's session ended too: signing in again asks for the password again.
    await page.getByTestId('sign-in').click();
    await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
    await expect.poll(() => page.locator('input[name="login"]').count()).toBe(1);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('bob (students) gets viewer, in Korean too, and returns to the page he signed in from', async () => {
    const { context, page, errors } = await newPage('ko');
    await page.goto(`${app}/projects`);
    await page.getByTestId('sign-in').click();
    await signInAtProvider(page, 'bob');
    await expect
      .poll(() => page.getByTestId('session-identity').textContent(), { timeout: 15_000 })
      .toBe('bob (열람자)');
    expect(new URL(page.url()).pathname).toBe('/projects');
    expect(await whoAmI(page)).toEqual({
      role: 'viewer',
      user: 'bob',
      name: 'bob',
      via: 'oidc',
      loginAvailable: true,
    });
    expect(errors).toEqual([]);
    await context.close();
  });

  it('a user in no mapped group gets a clear 403 page and no session', async () => {
    const { context, page } = await newPage();
    await page.goto(`${app}/auth/login`);
    await page.waitForURL((u) => u.origin === provider.issuer, { timeout: 15_000 });
    await page.locator('input[name="login"]').fill('carol');
    await page.locator('input[name="password"]').fill('x');
    const callback = page.waitForResponse((r) => r.url().startsWith(`${app}/auth/callback`), {
      timeout: 20_000,
    });
    await page.locator('button[type="submit"]').click();
    const consent = page.getByRole('button', { name: 'Continue' });
    await consent.click({ timeout: 10_000 }).catch(() => {});
    const res = await callback;
    expect(res.status()).toBe(403);
    await expect.poll(() => page.locator('h1').textContent()).toBe('No access for this account');
    expect(await page.locator('main').textContent()).toContain(
      'You signed in as carol, but none of your groups (guests)',
    );
    expect((await context.cookies(app)).some((c) => c.name === 'gpupulse_session')).toBe(false);
    expect(await whoAmI(page)).toMatchObject({ role: 'display', via: 'anonymous' });
    await context.close();
  });

  it('a callback that this browser did not start is refused (no login CSRF)', async () => {
    const res = await fetch(`${app}/auth/callback?code=stolen&state=whatever`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('set-cookie') ?? '').not.toMatch(/gpupulse_session=[^;]/);
    // `next` never leaves this origin.
    const login = await fetch(`${app}/auth/login?next=${encodeURIComponent('//evil.example/x')}`, {
      redirect: 'manual',
    });
    expect(login.status).toBe(302);
    expect(new URL(login.headers.get('location')!).origin).toBe(provider.issuer);
  });
});
