import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type AccessConfig, DEFAULT_ACCESS, type OidcConfig } from '../src/access/access-file.ts';
import { createAuthRoutes, PendingLogins, safeNext } from '../src/access/auth-routes.ts';
import type { PendingLogin } from '../src/access/oidc.ts';
import { SESSION_COOKIE, SessionSigner } from '../src/access/sessions.ts';
import { silentLogger } from '../src/logger.ts';
import { onCleanup } from './helpers.ts';

const signer = SessionSigner.withKey(Buffer.alloc(32, 7));

function oidc(over: Partial<OidcConfig> = {}): OidcConfig {
  return {
    issuer: 'http://127.0.0.1:1',
    clientId: 'gpupulse',
    clientSecret: 'secret',
    usernameClaim: 'preferred_username',
    groupsClaim: 'groups',
    roles: { admin: ['gpu-ops'], viewer: ['*'] },
    ...over,
  } as OidcConfig;
}

async function serve(access: AccessConfig): Promise<string> {
  const routes = createAuthRoutes({
    access: () => access,
    signer,
    logger: silentLogger(),
    secure: false,
    oidcTimeoutSeconds: 1,
  });
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    routes(req, res, u.pathname, u.searchParams).then((handled) => {
      if (!handled) {
        res.writeHead(418);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('safeNext', () => {
  it.each([
    ['/node/gpu-a-01?range=1h#x', '/node/gpu-a-01?range=1h#x'],
    ['/', '/'],
    [null, '/'],
    ['', '/'],
    ['https://evil.example/', '/'],
    ['//evil.example/', '/'],
    ['/\\evil.example', '/'],
    ['evil', '/'],
    ['/%0d%0aSet-Cookie:x', '/%0d%0aSet-Cookie:x'],
    ['/\r\nSet-Cookie: x=1', '/'],
    ['/auth/logout', '/'],
    [`/${'a'.repeat(3000)}`, '/'],
  ])('%j -> %j', (next, expected) => {
    expect(safeNext(next)).toBe(expected);
  });
});

describe('PendingLogins', () => {
  const pending = (expiresAt: number): PendingLogin => ({
    state: 's',
    nonce: 'n',
    codeVerifier: 'v',
    next: '/',
    redirectUri: 'http://x/auth/callback',
    expiresAt,
  });

  it('is single use, expires, and keeps at most its bound (oldest dropped)', () => {
    let now = 1000;
    const map = new PendingLogins(3, () => now);
    const a = map.add(pending(now + 100));
    expect(map.take(a)).not.toBeNull();
    expect(map.take(a)).toBeNull();
    const b = map.add(pending(now + 100));
    now += 200;
    expect(map.take(b)).toBeNull();
    const ids = [0, 1, 2, 3, 4].map(() => map.add(pending(now + 1000)));
    expect(map.size).toBe(3);
    expect(map.take(ids[0]!)).toBeNull();
    expect(map.take(ids[4]!)).not.toBeNull();
    expect(map.take('unknown')).toBeNull();
    expect(map.take(null)).toBeNull();
  });
});

describe('auth routes', () => {
  it('answers 404 JSON when single sign-on is not configured, and leaves other paths alone', async () => {
    const url = await serve(DEFAULT_ACCESS);
    const res = await fetch(`${url}/auth/login`, { redirect: 'manual' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: {
        code: 'NOT_FOUND',
        message: 'single sign-on is not configured (oidc in GPUPULSE_ACCESS_FILE)',
      },
    });
    expect((await fetch(`${url}/auth/other`)).status).toBe(418);
    expect((await fetch(`${url}/api/v1/me`)).status).toBe(418);
    expect((await fetch(`${url}/auth/login`, { method: 'POST' })).status).toBe(405);
  });

  it('shows a clear page, not a crash, when the provider is down', async () => {
    const url = await serve({ ...DEFAULT_ACCESS, oidc: oidc({ issuer: 'http://127.0.0.1:1/realms/x' }) });
    const started = Date.now();
    const res = await fetch(`${url}/auth/login`, { redirect: 'manual' });
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('Sign-in provider not reachable');
    expect(html).toContain('http://127.0.0.1:1/realms/x');
    expect(html).not.toMatch(/<script|style=/);
    expect(Date.now() - started).toBeLessThan(5000);
    // Still serving.
    expect((await fetch(`${url}/auth/login`, { redirect: 'manual' })).status).toBe(502);
  });

  it('gives up on a provider that accepts but never answers (discovery timeout)', async () => {
    const sockets = new Set<Socket>();
    const blackHole = createTcpServer((s) => sockets.add(s));
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    onCleanup(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          blackHole.close(() => r());
        }),
    );
    const issuer = `http://127.0.0.1:${(blackHole.address() as AddressInfo).port}`;
    const url = await serve({ ...DEFAULT_ACCESS, oidc: oidc({ issuer }) });
    const started = Date.now();
    const res = await fetch(`${url}/auth/login`, { redirect: 'manual' });
    const ms = Date.now() - started;
    expect(res.status).toBe(502);
    expect(await res.text()).toContain('did not answer its discovery request');
    expect(ms).toBeGreaterThanOrEqual(900); // the 1 s timeout of this test's routes
    expect(ms).toBeLessThan(4000);
  });

  it('refuses a plain-HTTP issuer that is not on this machine', async () => {
    const url = await serve({ ...DEFAULT_ACCESS, oidc: oidc({ issuer: 'http://sso.example/realms/x' }) });
    const res = await fetch(`${url}/auth/login`, { redirect: 'manual' });
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/plain HTTP.*use the provider&#39;s https:\/\/ address/);
  });

  it('names an unreadable clientSecretFile', async () => {
    const url = await serve({
      ...DEFAULT_ACCESS,
      oidc: oidc({ clientSecret: undefined, clientSecretFile: '/nonexistent/oidc-secret' }),
    });
    const res = await fetch(`${url}/auth/login`, { redirect: 'manual' });
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(
      /clientSecretFile &quot;\/nonexistent\/oidc-secret&quot; cannot be read \(ENOENT\)/,
    );
  });

  it('refuses a callback this browser did not start (no login cookie)', async () => {
    const url = await serve({ ...DEFAULT_ACCESS, oidc: oidc() });
    const res = await fetch(`${url}/auth/callback?code=abc&state=def`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Sign-in expired');
  });

  it('logout clears the session cookie (also a wall token session) and returns to /', async () => {
    const url = await serve(DEFAULT_ACCESS);
    const wall = signer.issue({
      via: 'token',
      name: 'wall-1',
      user: null,
      tokenName: 'wall-1',
      iat: Date.now(),
      exp: null,
    });
    const res = await fetch(`${url}/auth/logout`, {
      redirect: 'manual',
      headers: { cookie: `${SESSION_COOKIE}=${wall}` },
    });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=;`));
    expect(cookie).toMatch(/Max-Age=0/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).not.toMatch(/Secure/);
  });
});
