/**
 * Who is asking, for HTTP requests and Socket.IO handshakes alike. In this order:
 *   1. a token: `Authorization: Bearer <token>` (or the handshake's `auth.token`);
 *   2. the session cookie (a wall's kiosk login, or single sign-on);
 *   3. trusted proxy headers, only from an address in `trustedProxy.from`;
 *   4. otherwise the anonymous role of the access file.
 * Credentials that were presented but are not valid (unknown token, bad or revoked session) give
 * role `none` with a reason, never a silent fallback to the anonymous role.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AccessConfig } from './access-file.ts';
import { findBySecret, normalizeAddress } from './access-file.ts';
import { type Principal, roleForGroups } from './roles.ts';
import { parseCookies, SESSION_COOKIE, type SessionData, type SessionSigner } from './sessions.ts';

export interface CredentialSource {
  headers: IncomingHttpHeaders;
  /** The TCP peer (`req.socket.remoteAddress`, `socket.handshake.address`). */
  remoteAddress: string | null | undefined;
  /** A token given out of band (the Socket.IO handshake's `auth.token`). */
  token?: string | null;
}

export interface Resolution {
  principal: Principal;
  /** True when the request carried credentials (token, session cookie, proxy headers from a trusted address). */
  presented: boolean;
  /** Why presented credentials were refused (then `principal.role` is `none`); null: fine. */
  error: string | null;
  /** The verified session behind the principal, if any. */
  session: SessionData | null;
}

const MAX_HEADER = 1024;

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? null : s;
}

/** The bearer token of an `Authorization` header; null when there is none (or another scheme). */
export function bearerToken(headers: IncomingHttpHeaders): string | null {
  const auth = header(headers, 'authorization');
  if (!auth) return null;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(auth);
  return m ? m[1]! : null;
}

const refused = (error: string, session: SessionData | null = null): Resolution => ({
  principal: { role: 'none', user: null, name: null, via: 'anonymous' },
  presented: true,
  error,
  session,
});

/** Resolves who is asking, with the reason when presented credentials are refused. */
export function resolveRequest(
  src: CredentialSource,
  access: AccessConfig,
  signer: SessionSigner,
  now = Date.now(),
): Resolution {
  const token = src.token ?? bearerToken(src.headers);
  if (token) {
    if (token.length > 512) return refused('the token is too long');
    const entry = findBySecret(access.tokens, token);
    if (!entry) return refused('the token is not valid (not in the access file)');
    return {
      principal: { role: entry.role, user: entry.user ?? null, name: entry.name, via: 'token' },
      presented: true,
      error: null,
      session: null,
    };
  }
  const cookie = parseCookies(src.headers.cookie).get(SESSION_COOKIE);
  if (cookie) {
    const s = signer.verify(cookie, now);
    if (!s) return refused('the session is not valid or has expired; sign in again');
    if (s.via === 'token') {
      const entry = s.tokenName ? access.tokens.find((t) => t.name === s.tokenName) : undefined;
      if (!entry) return refused('the token of this session was revoked', s);
      return {
        principal: { role: entry.role, user: entry.user ?? null, name: entry.name, via: 'session' },
        presented: true,
        error: null,
        session: s,
      };
    }
    if (!access.oidc) return refused('single sign-on is no longer configured; the session ended', s);
    const role =
      s.groups !== undefined
        ? (roleForGroups(access.oidc.roles, s.groups) ?? access.anonymous)
        : (s.role ?? access.anonymous);
    return {
      principal: { role, user: s.user, name: s.name, via: 'oidc' },
      presented: true,
      error: null,
      session: s,
    };
  }
  const proxy = access.trustedProxy;
  if (proxy) {
    const user = header(src.headers, proxy.userHeader);
    if (user && src.remoteAddress && proxy.from.has(src.remoteAddress)) {
      if (user.length > MAX_HEADER) return refused(`${proxy.userHeader} is too long`);
      const groupsText = proxy.groupsHeader ? (header(src.headers, proxy.groupsHeader) ?? '') : '';
      const groups = groupsText
        .slice(0, 16 * MAX_HEADER)
        .split(/[,;]/)
        .map((g) => g.trim())
        .filter(Boolean);
      const role = roleForGroups(proxy.roles, groups) ?? access.anonymous;
      return {
        principal: { role, user: user.trim(), name: user.trim(), via: 'proxy' },
        presented: true,
        error: null,
        session: null,
      };
    }
  }
  return {
    principal: { role: access.anonymous, user: null, name: null, via: 'anonymous' },
    presented: false,
    error: null,
    session: null,
  };
}

/** The principal alone (refused credentials give role `none`). */
export function resolvePrincipal(
  src: CredentialSource,
  access: AccessConfig,
  signer: SessionSigner,
): Principal {
  return resolveRequest(src, access, signer).principal;
}

/** `::ffff:1.2.3.4` → `1.2.3.4` (for logs). */
export const peerAddress = (a: string | null | undefined): string | null => (a ? normalizeAddress(a) : null);
