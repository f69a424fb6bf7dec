/**
 * "I'm still using it" links: `base64url(JSON) . base64url(HMAC-SHA256)`, keyed by 32 random bytes
 * in `<dataDir>/nudge.key` (created 0600 on first start, like the session key, but a key of its
 * own: a link can never pass for a session cookie or the other way round). A link names the GPU
 * and user it snoozes, expires (`nudge.linkValidFor`) and carries a random id that is accepted
 * once (the ids used are kept with the snooze records, so a restart does not revive a link).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { openKeyFile } from '../access/key-file.ts';

export const NUDGE_KEY_FILE = 'nudge.key';

export interface SnoozeClaim {
  node: string;
  gpuUuid: string;
  user: string;
  /** Random link id (single use). */
  id: string;
  /** Expires at, ms since the epoch. */
  exp: number;
}

const ClaimSchema = z.object({
  node: z.string().max(256),
  gpuUuid: z.string().max(256),
  user: z.string().max(256),
  id: z.string().max(64),
  exp: z.number(),
});

export type LinkCheck =
  | { ok: true; claim: SnoozeClaim }
  | { ok: false; reason: 'invalid' | 'expired'; claim: SnoozeClaim | null };

export class SnoozeLinks {
  constructor(private readonly key: Buffer) {}

  /** With a given key (tests). */
  static withKeyForTests(key: Buffer): SnoozeLinks {
    return new SnoozeLinks(Buffer.from(key));
  }

  static open(dataDir: string): SnoozeLinks {
    return new SnoozeLinks(openKeyFile(dataDir, NUDGE_KEY_FILE));
  }

  issue(c: Omit<SnoozeClaim, 'id'>): SnoozeClaim & { token: string } {
    const claim: SnoozeClaim = { ...c, id: randomBytes(12).toString('base64url') };
    const body = Buffer.from(JSON.stringify(claim), 'utf8').toString('base64url');
    return { ...claim, token: `${body}.${this.mac(body)}` };
  }

  /** Checks signature and expiry (not use: the engine knows which ids were used). */
  verify(token: string, now: number): LinkCheck {
    if (token.length === 0 || token.length > 2048) return { ok: false, reason: 'invalid', claim: null };
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return { ok: false, reason: 'invalid', claim: null };
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(body), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'invalid', claim: null };
    let data: unknown;
    try {
      data = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'invalid', claim: null };
    }
    const parsed = ClaimSchema.safeParse(data);
    if (!parsed.success) return { ok: false, reason: 'invalid', claim: null };
    if (parsed.data.exp <= now) return { ok: false, reason: 'expired', claim: parsed.data };
    return { ok: true, claim: parsed.data };
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(`gpupulse-nudge-link\u0000${body}`).digest('base64url');
  }
}
