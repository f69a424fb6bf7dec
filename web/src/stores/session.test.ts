import { WhoAmISchema } from '@gpupulse/protocol';
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it } from 'vitest';
import { roleSeesPeople, signInHref, useSessionStore } from './session.ts';

const isWhoAmI = (v: unknown) => WhoAmISchema.safeParse(v).success;

describe('session', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it("the /api/v1/me shape is protocol's (what the API client checks)", () => {
    const me = { role: 'admin', user: 'alice', name: 'alice', via: 'oidc', loginAvailable: true };
    expect(isWhoAmI(me)).toBe(true);
    expect(isWhoAmI({ ...me, role: 'root' })).toBe(false);
    expect(isWhoAmI({ ...me, via: 'magic' })).toBe(false);
    expect(isWhoAmI({ ...me, user: 3 })).toBe(false);
    expect(isWhoAmI({ ...me, loginAvailable: 'yes' })).toBe(false);
    expect(isWhoAmI(null)).toBe(false);
  });

  it('only viewers and admins are sent users and processes', () => {
    expect(roleSeesPeople('admin')).toBe(true);
    expect(roleSeesPeople('viewer')).toBe(true);
    expect(roleSeesPeople('display')).toBe(false);
    expect(roleSeesPeople('none')).toBe(false);
  });

  it('signs in back to the same page, never elsewhere', () => {
    expect(signInHref('/node/gpu-a-01?range=1h')).toBe('/auth/login?next=%2Fnode%2Fgpu-a-01%3Frange%3D1h');
    expect(signInHref('//evil.example')).toBe('/auth/login?next=%2F');
  });

  it('derives what the header and the views show', () => {
    const s = useSessionStore();
    // Unknown (older server): nothing hidden, nothing offered.
    expect(s.seesPeople).toBe(true);
    expect(s.blocked).toBe(false);
    s.me = { role: 'display', user: null, name: null, via: 'anonymous', loginAvailable: true };
    expect(s.seesPeople).toBe(false);
    expect(s.signedIn).toBe(false);
    expect(s.loginAvailable).toBe(true);
    expect(s.who).toBeNull();
    s.me = { role: 'admin', user: 'alice', name: 'alice', via: 'oidc', loginAvailable: true };
    expect(s.signedIn).toBe(true);
    expect(s.who).toBe('alice');
    expect(s.canSignOut).toBe(true);
    s.me = { role: 'none', user: null, name: null, via: 'anonymous', loginAvailable: false };
    expect(s.blocked).toBe(true);
  });
});
