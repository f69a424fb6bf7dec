import type { Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from './wait.ts';

/** The test's people: the user name is what they type in the provider's login form. */
export const OIDC_USERS = {
  alice: { name: 'Alice Admin', groups: ['gpu-ops', 'staff'] },
  bob: { name: 'Bob Student', groups: ['students'] },
  /** Signed in, but in no group the access file maps to a role. */
  carol: { name: 'Carol Guest', groups: ['guests'] },
} as const;
export type OidcUser = keyof typeof OIDC_USERS;

export const OIDC_CLIENT_ID = 'gpupulse';
export const OIDC_CLIENT_SECRET = 'test-client-secret-0123456789';

export interface TestOidcProvider {
  /** `http://127.0.0.1:<port>` (the issuer). */
  issuer: string;
  port: number;
  /** Provider events seen so far (`grant.success`, `end_session.success` …), oldest first. */
  events: string[];
  stop(): Promise<void>;
}

/**
 * A real OpenID Provider (`oidc-provider`) on 127.0.0.1: one confidential client for the gpupulse
 * server at `appOrigin` (redirect `…/auth/callback`, post-logout `…/`), PKCE required, and the
 * users of `OIDC_USERS` with `preferred_username` and a `groups` claim (scopes `profile`,
 * `groups`). Its development login form takes any password; users it does not know are refused.
 */
export async function startOidcProvider(appOrigin: string, port?: number): Promise<TestOidcProvider> {
  const p = port ?? (await freePort());
  const issuer = `http://127.0.0.1:${p}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT_ID,
        client_secret: OIDC_CLIENT_SECRET,
        redirect_uris: [`${appOrigin}/auth/callback`],
        post_logout_redirect_uris: [`${appOrigin}/`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      groups: ['groups'],
    },
    findAccount: (_ctx, id) => {
      const user = OIDC_USERS[id as OidcUser];
      if (!user) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, preferred_username: id, name: user.name, groups: [...user.groups] }),
      };
    },
    cookies: { keys: ['gpupulse-test-provider-cookie-key'] },
    pkce: { required: () => true },
    // Explicit lifetimes (the defaults work but print a notice each).
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  });
  const events: string[] = [];
  for (const e of [
    'grant.success',
    'end_session.success',
    'authorization.error',
    'grant.error',
    'server_error',
  ]) {
    provider.on(e, () => events.push(e));
  }
  const server: Server = await new Promise((resolve, reject) => {
    const s = provider.listen(p, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  return {
    issuer,
    port: p,
    events,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
