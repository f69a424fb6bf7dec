/**
 * Signed cookie sessions: `base64url(JSON) . base64url(HMAC-SHA256)`, keyed by 32 random bytes in
 * `<dataDir>/session.key` (created 0600 on first start, so sessions survive restarts; delete the
 * file to sign everybody out). A `via: 'token'` session (a wall screen's kiosk login) names its
 * token and never expires: its role is re-read from the access file on every request, so removing
 * the token from the file signs the wall out. `via: 'oidc'` sessions expire.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { RoleSchema } from '@gpupulse/protocol';
import { z } from 'zod';
import { openKeyFile } from './key-file.ts';
import type { Role } from './roles.ts';

export const SESSION_COOKIE = 'gpupulse_session';
export const SESSION_KEY_FILE = 'session.key';
/** What browsers keep at most (Chrome caps Max-Age at 400 days); the server renews it. */
export const LONGEST_COOKIE_SECONDS = 400 * 24 * 3600;

export interface SessionData {
  via: 'token' | 'oidc';
  name: string | null;
  user: string | null;
  tokenName?: string;
  groups?: string[];
  role?: Role;
  /** Issued at, ms since the epoch. */
  iat: number;
  /** Expires at, ms since the epoch; null: never. */
  exp: number | null;
}

const SessionDataSchema = z.object({
  via: z.enum(['token', 'oidc']),
  name: z.string().max(512).nullable(),
  user: z.string().max(512).nullable(),
  tokenName: z.string().max(256).optional(),
  groups: z.array(z.string().max(256)).max(1000).optional(),
  role: RoleSchema.optional(),
  iat: z.number(),
  exp: z.number().nullable(),
});

export class SessionSigner {
  private constructor(private readonly key: Buffer) {}

  /** Reads `<dataDir>/session.key`, creating it (0600, 32 random bytes) when missing. */
  static open(dataDir: string): SessionSigner {
    return new SessionSigner(openKeyFile(dataDir, SESSION_KEY_FILE));
  }

  /** A signer with a given key (tests). */
  static withKey(key: Buffer): SessionSigner {
    return new SessionSigner(Buffer.from(key));
  }

  issue(d: SessionData): string {
    const body = Buffer.from(JSON.stringify(d), 'utf8').toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The session in a cookie value, or null when unsigned, tampered with, malformed or expired. */
  verify(value: string, now = Date.now()): SessionData | null {
    if (value.length > 8192) return null;
    const dot = value.lastIndexOf('.');
    if (dot <= 0) return null;
    const body = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(body), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let data: unknown;
    try {
      data = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const parsed = SessionDataSchema.safeParse(data);
    if (!parsed.success) return null;
    const s = parsed.data as SessionData;
    if (s.exp !== null && s.exp <= now) return null;
    return s;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

/** Cookies of a request (`cookie` header), first value wins. */
export function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const text = Array.isArray(header) ? header.join('; ') : (header ?? '');
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).trim();
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (!out.has(k)) out.set(k, v);
  }
  return out;
}

function appendSetCookie(res: ServerResponse, cookie: string): void {
  const prev = res.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
  res.setHeader('set-cookie', [...list, cookie]);
}

/**
 * Sets the session cookie: HttpOnly, SameSite=Lax, Path=/, Secure when HTTPS. `maxAgeSeconds`
 * null: as long as browsers keep a cookie (400 days; renewed by the server while in use).
 */
export function setSessionCookie(
  res: ServerResponse,
  value: string,
  opts: { secure: boolean; maxAgeSeconds: number | null },
): void {
  const maxAge = opts.maxAgeSeconds ?? LONGEST_COOKIE_SECONDS;
  appendSetCookie(
    res,
    `${SESSION_COOKIE}=${value}; Max-Age=${Math.max(0, Math.floor(maxAge))}; Path=/; HttpOnly; SameSite=Lax${opts.secure ? '; Secure' : ''}`,
  );
}

export function clearSessionCookie(res: ServerResponse, opts: { secure: boolean }): void {
  appendSetCookie(
    res,
    `${SESSION_COOKIE}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax${opts.secure ? '; Secure' : ''}`,
  );
}
