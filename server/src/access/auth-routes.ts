/**
 * `/auth/login`, `/auth/callback`, `/auth/logout`: single sign-on against the OpenID provider of
 * the access file (`oidc`), and sign-out for every kind of session (also a wall's token session).
 *
 * A login in progress (PKCE verifier, state, nonce, where to return) is kept in a bounded
 * in-memory map for 10 minutes, keyed by a random id in an HttpOnly cookie scoped to `/auth/`: the
 * callback must come back to the browser that started the login (no login CSRF), and is single use.
 * A restart forgets logins in progress (the page says to try again).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AccessConfig, OidcConfig } from './access-file.ts';
import { OidcError, OidcProvider, type PendingLogin } from './oidc.ts';
import { roleForGroups } from './roles.ts';
import {
  clearSessionCookie,
  parseCookies,
  SESSION_COOKIE,
  type SessionSigner,
  setSessionCookie,
} from './sessions.ts';

export const LOGIN_COOKIE = 'gpupulse_login';
/** How long the provider may take to send the browser back (the user types a password meanwhile). */
export const PENDING_LOGIN_TTL_MS = 10 * 60_000;
/** Logins in progress kept at most; the oldest goes first (a flood of /auth/login cannot grow memory). */
export const MAX_PENDING_LOGINS = 1000;
/** An OIDC session lasts this long (then the user signs in again; the provider's own session usually makes that one click). */
export const OIDC_SESSION_SECONDS = 12 * 3600;

export interface AuthRoutesDeps {
  access: () => AccessConfig;
  signer: SessionSigner;
  logger: Logger;
  /** The server speaks HTTPS (itself or behind a proxy that does): cookies get `Secure`. */
  secure: boolean;
  /** The dashboard's external base URL (`https://gpupulse.example`); null: from the request's Host. */
  publicUrl?: string | null;
  /** Discovery/token request timeout (default 5 s). */
  oidcTimeoutSeconds?: number;
  now?: () => number;
}

export type AuthRoutes = (
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  params: URLSearchParams,
) => Promise<boolean>;

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** A plain page (no inline script or style: it is served under the dashboard's CSP). */
function page(
  res: ServerResponse,
  status: number,
  title: string,
  paragraphs: string[],
  links: Array<[href: string, text: string]>,
  head: boolean,
): void {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>${escapeHtml(title)} · gpupulse</title></head>
<body><main>
<h1>${escapeHtml(title)}</h1>
${paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
<p>${links.map(([href, text]) => `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`).join(' · ')}</p>
</main></body></html>
`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : body);
}

function json(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store', 'content-length': 0 });
  res.end();
}

/** The value of one cookie of the request (first occurrence), or null. */
export function readCookie(req: IncomingMessage, name: string): string | null {
  return parseCookies(req.headers.cookie).get(name) ?? null;
}

function appendSetCookie(res: ServerResponse, cookie: string): void {
  const prev = res.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
  res.setHeader('set-cookie', [...list, cookie]);
}

function loginCookie(value: string, secure: boolean, maxAgeSeconds: number): string {
  return `${LOGIN_COOKIE}=${value}; Path=/auth/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

/**
 * A same-origin path to return to after the login (`?next=`): an absolute path on this server,
 * never another origin (`//evil.example`, `/\evil.example`, `https://…`); anything else → `/`.
 */
export function safeNext(next: string | null): string {
  if (!next || next.length > 2048 || !next.startsWith('/') || next.startsWith('//') || next.includes('\\'))
    return '/';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused here
  if (/[\u0000-\u001f\u007f]/.test(next)) return '/';
  try {
    const base = new URL('http://gpupulse.invalid');
    const u = new URL(next, base);
    if (u.origin !== base.origin) return '/';
    if (u.pathname.startsWith('/auth/')) return '/';
    return `${u.pathname}${u.search}${u.hash}`;
  } catch {
    return '/';
  }
}

/** Bounded, expiring map of logins in progress. */
export class PendingLogins {
  private readonly map = new Map<string, PendingLogin>();

  constructor(
    private readonly max = MAX_PENDING_LOGINS,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.map.size;
  }

  /** Stores a login; returns its id (for the cookie). Drops expired ones, then the oldest beyond `max`. */
  add(pending: PendingLogin): string {
    const now = this.now();
    for (const [id, p] of this.map) {
      if (p.expiresAt > now) break; // insertion order = expiry order (one TTL)
      this.map.delete(id);
    }
    while (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
    const id = randomBytes(24).toString('base64url');
    this.map.set(id, pending);
    return id;
  }

  /** Removes and returns the login (single use); null when unknown or expired. */
  take(id: string | null): PendingLogin | null {
    if (!id) return null;
    const p = this.map.get(id);
    if (!p) return null;
    this.map.delete(id);
    return p.expiresAt > this.now() ? p : null;
  }
}

export function createAuthRoutes(deps: AuthRoutesDeps): AuthRoutes {
  const log = deps.logger;
  const now = deps.now ?? Date.now;
  const provider = new OidcProvider(log, deps.oidcTimeoutSeconds);
  const pending = new PendingLogins(MAX_PENDING_LOGINS, now);

  /** `https://gpupulse.example`: the configured public URL, else this request's scheme and Host. */
  const baseUrl = (req: IncomingMessage): string => {
    if (deps.publicUrl) return deps.publicUrl.replace(/\/+$/, '');
    const host = req.headers.host ?? 'localhost';
    return `${deps.secure ? 'https' : 'http'}://${host}`;
  };
  const redirectUri = (req: IncomingMessage, oidc: OidcConfig): string =>
    oidc.redirectUrl ?? `${baseUrl(req)}/auth/callback`;

  const failurePage = (res: ServerResponse, err: unknown, head: boolean, context: string): void => {
    if (err instanceof OidcError) {
      log.warn({ kind: err.kind, err: err.message }, `${context} failed`);
      const title =
        err.kind === 'provider-unreachable'
          ? 'Sign-in provider not reachable'
          : err.kind === 'misconfigured'
            ? 'Single sign-on is misconfigured'
            : 'Sign-in failed';
      const advice =
        err.kind === 'provider-unreachable'
          ? 'Try again in a moment. The dashboard still works without signing in, with the anonymous role.'
          : err.kind === 'misconfigured'
            ? 'An administrator has to fix the oidc section of the access file (GPUPULSE_ACCESS_FILE).'
            : 'Try signing in again.';
      page(
        res,
        err.status,
        title,
        [err.message, advice],
        [
          ['/auth/login', 'Sign in again'],
          ['/', 'Dashboard'],
        ],
        head,
      );
      return;
    }
    log.error({ err }, `${context} failed`);
    page(
      res,
      500,
      'Sign-in failed',
      ['An unexpected error happened; it is in the server log.'],
      [['/', 'Dashboard']],
      head,
    );
  };

  const notConfigured = (res: ServerResponse, head: boolean) =>
    json(
      res,
      404,
      {
        error: {
          code: 'NOT_FOUND',
          message: 'single sign-on is not configured (oidc in GPUPULSE_ACCESS_FILE)',
        },
      },
      head,
    );

  async function login(req: IncomingMessage, res: ServerResponse, params: URLSearchParams, head: boolean) {
    const oidc = deps.access().oidc;
    if (!oidc) return notConfigured(res, head);
    try {
      const { url, pending: p } = await provider.begin(
        oidc,
        redirectUri(req, oidc),
        safeNext(params.get('next')),
        PENDING_LOGIN_TTL_MS,
      );
      const id = pending.add(p);
      appendSetCookie(res, loginCookie(id, deps.secure, PENDING_LOGIN_TTL_MS / 1000));
      redirect(res, url.href);
    } catch (err) {
      failurePage(res, err, head, 'login');
    }
  }

  async function callback(req: IncomingMessage, res: ServerResponse, params: URLSearchParams, head: boolean) {
    const oidc = deps.access().oidc;
    if (!oidc) return notConfigured(res, head);
    const p = pending.take(readCookie(req, LOGIN_COOKIE));
    appendSetCookie(res, loginCookie('', deps.secure, 0));
    if (!p) {
      page(
        res,
        400,
        'Sign-in expired',
        [
          'This sign-in was not started in this browser, took longer than 10 minutes, or was already used. Start it again.',
        ],
        [
          ['/auth/login', 'Sign in'],
          ['/', 'Dashboard'],
        ],
        head,
      );
      return;
    }
    try {
      const identity = await provider.finish(oidc, params, p);
      const role = roleForGroups(oidc.roles, identity.groups);
      if (!role) {
        log.warn(
          { user: identity.username, groups: identity.groups },
          'signed in, but no role for these groups',
        );
        page(
          res,
          403,
          'No access for this account',
          [
            `You signed in as ${identity.username}, but none of your groups (${identity.groups.join(', ') || 'none'}) has a role on this dashboard.`,
            'Ask the administrators to add one of your groups to oidc.roles in the access file.',
          ],
          [
            ['/auth/logout', 'Sign out'],
            ['/', 'Dashboard (without signing in)'],
          ],
          head,
        );
        return;
      }
      const iat = now();
      const value = deps.signer.issue({
        via: 'oidc',
        name: identity.username,
        user: identity.username,
        groups: identity.groups,
        role,
        iat,
        exp: iat + OIDC_SESSION_SECONDS * 1000,
      });
      setSessionCookie(res, value, { secure: deps.secure, maxAgeSeconds: OIDC_SESSION_SECONDS });
      log.info({ user: identity.username, role, groups: identity.groups }, 'signed in');
      redirect(res, p.next);
    } catch (err) {
      failurePage(res, err, head, 'sign-in callback');
    }
  }

  async function logout(req: IncomingMessage, res: ServerResponse) {
    const cookie = readCookie(req, SESSION_COOKIE);
    const session = cookie ? deps.signer.verify(cookie) : null;
    clearSessionCookie(res, { secure: deps.secure });
    const oidc = deps.access().oidc;
    if (session) log.info({ via: session.via, name: session.name }, 'signed out');
    // Also end the provider's session, or the next "Sign in" would sign the same user in silently.
    if (session?.via === 'oidc' && oidc) {
      const end = await provider.endSessionUrl(oidc, `${baseUrl(req)}/`);
      if (end) return redirect(res, end.href);
    }
    redirect(res, '/');
  }

  return async (req, res, pathname, params) => {
    if (pathname !== '/auth/login' && pathname !== '/auth/callback' && pathname !== '/auth/logout')
      return false;
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    const allowed = pathname === '/auth/logout' ? ['GET', 'HEAD', 'POST'] : ['GET', 'HEAD'];
    if (!allowed.includes(method)) {
      res.setHeader('allow', allowed.join(', '));
      json(res, 405, { error: { code: 'VALIDATION', message: `method ${method} not allowed` } }, head);
      return true;
    }
    if (pathname === '/auth/login') await login(req, res, params, head);
    else if (pathname === '/auth/callback') await callback(req, res, params, head);
    else await logout(req, res);
    return true;
  };
}
