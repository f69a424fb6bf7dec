import { readFileSync } from 'node:fs';
import {
  createServer as createPlainServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createTlsServer } from 'node:https';

/**
 * The Content-Security-Policy of every response.
 *
 * - No inline scripts anywhere (`script-src 'self'`): the built dashboard is one module script
 *   file; nothing uses `eval` or inline handlers.
 * - `style-src 'self'` without `'unsafe-inline'`: the dashboard's styles are built CSS files. What
 *   Vue's `:style` bindings and ECharts (canvas renderer, tooltip container) do is CSSOM
 *   (`el.style.x = …`, `style.cssText = …`), which CSP does not govern; only `style="…"` in parsed
 *   markup is. The chart tooltips therefore return DOM nodes, not HTML strings with `style=`
 *   (web/src/lib/tooltip-dom.ts), and Chromium reports no violation on any view (test/src/access-browser.test.ts).
 * - `connect-src 'self'`: CSP Level 3 lets `'self'` match `ws:`/`wss:` to the same host and port,
 *   which is what the dashboard socket (Socket.IO polling, then WebSocket) uses.
 * - `img-src`/`font-src` allow `data:` (the `data:,` favicon; inline icons).
 * - `frame-ancestors 'none'`: nothing frames the dashboard (clickjacking); a wall display opens it
 *   as a page. Matches `x-frame-options: DENY` for browsers without CSP 2.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "font-src 'self' data:",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

/** One year; sent only over HTTPS (browsers ignore it over HTTP anyway). No includeSubDomains: other hosts of the domain are not ours to decide. */
export const HSTS = 'max-age=31536000';

/** Headers for every response (API, static files, auth pages). `secure`: the server speaks HTTPS itself or behind a proxy that does. */
export function securityHeaders({ secure }: { secure: boolean }): Record<string, string> {
  const headers: Record<string, string> = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'cross-origin-opener-policy': 'same-origin',
  };
  if (secure) headers['strict-transport-security'] = HSTS;
  return headers;
}

/** `scheme://host[:port]` in the browser's serialisation (default ports dropped, lower case); null when not an origin. */
export function normalizeOrigin(value: string): string | null {
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (u.username || u.password) return null;
    return u.origin;
  } catch {
    return null;
  }
}

/**
 * Whether a request with this `Origin` may use the server: a request without one comes from a
 * non-browser client (agents, curl, Prometheus) and is allowed (credentials decide); a browser's
 * request must come from the server's own origin (the `Host` it addressed, with this server's
 * scheme) or one listed in `GPUPULSE_ALLOWED_ORIGINS`. `Origin: null` (sandboxed frames, files)
 * is refused.
 */
export function isAllowedOrigin(
  origin: string | undefined,
  host: string | undefined,
  allowed: readonly string[],
  secure: boolean,
): boolean {
  if (origin === undefined || origin === '') return true;
  const o = normalizeOrigin(origin);
  if (!o) return false;
  if (host) {
    const own = normalizeOrigin(`${secure ? 'https' : 'http'}://${host}`);
    if (own && own === o) return true;
  }
  for (const a of allowed) {
    if (normalizeOrigin(a) === o) return true;
  }
  return false;
}

/**
 * Parses `GPUPULSE_ALLOWED_ORIGINS` (comma-separated origins such as `https://wall.example:8443`).
 * Throws on an entry that is not an origin, naming it.
 */
export function parseAllowedOrigins(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const o = normalizeOrigin(s);
      const u = o ? new URL(s) : null;
      if (!o || !u || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
        throw new Error(
          `GPUPULSE_ALLOWED_ORIGINS: ${JSON.stringify(s)} is not an origin (scheme://host[:port], no path)`,
        );
      }
      return o;
    });
}

export interface TlsFiles {
  /** PEM certificate (chain) file; null with `tlsKey` null: plain HTTP. */
  tlsCert: string | null;
  tlsKey: string | null;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

function readPem(what: string, envName: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new Error(`${envName}: cannot read the TLS ${what} ${JSON.stringify(path)} (${code})`);
  }
}

/**
 * The server's listener: HTTPS (and so WSS for Socket.IO) when given a certificate and key (read
 * once, here), plain HTTP otherwise. One of the two without the other, an unreadable file or a key
 * that does not match the certificate is an error that names the file and the variable.
 */
export function createHttpListener(tls: TlsFiles, handler: RequestHandler): Server {
  const { tlsCert, tlsKey } = tls;
  if (!tlsCert && !tlsKey) return createPlainServer(handler);
  if (!tlsCert || !tlsKey) {
    throw new Error(
      `TLS needs both GPUPULSE_TLS_CERT and GPUPULSE_TLS_KEY (only ${tlsCert ? 'GPUPULSE_TLS_CERT' : 'GPUPULSE_TLS_KEY'} is set)`,
    );
  }
  const cert = readPem('certificate', 'GPUPULSE_TLS_CERT', tlsCert);
  const key = readPem('key', 'GPUPULSE_TLS_KEY', tlsKey);
  try {
    // An https.Server is an http.Server with TLS underneath: Socket.IO attaches to it the same way.
    return createTlsServer({ cert, key }, handler) as unknown as Server;
  } catch (err) {
    throw new Error(
      `GPUPULSE_TLS_CERT / GPUPULSE_TLS_KEY: ${JSON.stringify(tlsCert)} and ${JSON.stringify(tlsKey)} are not a usable PEM certificate and matching key (${(err as Error).message})`,
    );
  }
}
