import type { Role, WhoAmI } from '@gpupulse/protocol';
import { defineStore } from 'pinia';
import { computed, shallowRef } from 'vue';
import { api } from '../services/api.ts';

/** True when `role` is given user names, job names and processes by the server. */
export const roleSeesPeople = (role: Role): boolean => role === 'viewer' || role === 'admin';

/** `/auth/login?next=<this page>`: single sign-on, back to where the user was. */
export function signInHref(path: string): string {
  return `/auth/login?next=${encodeURIComponent(path.startsWith('/') && !path.startsWith('//') ? path : '/')}`;
}

/**
 * Who the server thinks is looking (`GET /api/v1/me`) and whether the dashboard socket was refused
 * (`UNAUTHORIZED`: role `none`, or a revoked token). Servers without `/api/v1/me` leave `me` null:
 * nothing is hidden and no sign-in is offered.
 */
export const useSessionStore = defineStore('session', () => {
  const me = shallowRef<WhoAmI | null>(null);
  const loaded = shallowRef(false);
  /** The server's message when it refused the dashboard socket; null while it accepts it. */
  const refused = shallowRef<string | null>(null);
  let inflight: Promise<void> | null = null;

  async function load(): Promise<void> {
    inflight ??= (async () => {
      try {
        const r = await api.me();
        if (r.kind === 'ok') me.value = r.data;
        else if (r.kind === 'missing') me.value = null;
        // An error (server restarting …) keeps what we knew.
      } finally {
        loaded.value = true;
        inflight = null;
      }
    })();
    return inflight;
  }

  function setRefused(message: string | null): void {
    if (refused.value === message) return;
    refused.value = message;
    // Whatever changed (a revoked token, a new session), ask again who we are.
    void load();
  }

  const role = computed<Role | null>(() => me.value?.role ?? null);
  /** Unknown role (older server): show what arrives. */
  const seesPeople = computed(() => role.value === null || roleSeesPeople(role.value));
  const loginAvailable = computed(() => me.value?.loginAvailable === true);
  /** A browser session we can end (single sign-on, a wall's token session). */
  const canSignOut = computed(() => me.value?.via === 'oidc' || me.value?.via === 'session');
  const signedIn = computed(() => !!me.value && me.value.via !== 'anonymous' && me.value.role !== 'none');
  /** The label of who is signed in (`alice`), null when anonymous. */
  const who = computed(() => (signedIn.value ? (me.value?.name ?? me.value?.user ?? null) : null));
  /** Nothing to show without signing in: the socket is refused, or the role is `none`. */
  const blocked = computed(() => refused.value !== null || role.value === 'none');

  return {
    me,
    loaded,
    refused,
    role,
    seesPeople,
    loginAvailable,
    canSignOut,
    signedIn,
    who,
    blocked,
    load,
    setRefused,
  };
});
