/**
 * OpenID Connect single sign-on through `openid-client`: issuer discovery (bounded by a timeout,
 * retried on the next login after a failure), the authorization code flow with PKCE, state and
 * nonce, the claims of the signed-in user (ID token, then UserInfo for what it lacks) and the
 * provider's end-session URL. The HTTP side lives in auth-routes.ts.
 */
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { OidcConfig } from './access-file.ts';

/** Discovery and token requests give up after this long (the login page says the provider is down). */
export const OIDC_TIMEOUT_SECONDS = 5;

export const DEFAULT_SCOPES = ['openid', 'profile'] as const;

/** What the provider said about the signed-in user. */
export interface OidcIdentity {
  /** The `usernameClaim` (default `preferred_username`): equals the Unix user on the GPU nodes. */
  username: string;
  /** The `groupsClaim` (default `groups`); empty when the provider sends none. */
  groups: string[];
  sub: string;
}

/** A login in progress: what the callback must check, kept until the provider sends the browser back. */
export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Same-origin path to return to after the login. */
  next: string;
  /** The redirect URI sent to the provider (the token request must repeat it). */
  redirectUri: string;
  expiresAt: number;
}

/** A failure the sign-in pages explain; `status` is the HTTP status of that page. */
export class OidcError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly kind: 'provider-unreachable' | 'misconfigured' | 'refused' | 'invalid-response',
  ) {
    super(message);
    this.name = 'OidcError';
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The client secret from `clientSecret` or `clientSecretFile` (trailing newline dropped); null: a public client (PKCE only). */
export function readClientSecret(oidc: OidcConfig): string | null {
  if (oidc.clientSecret) return oidc.clientSecret;
  if (!oidc.clientSecretFile) return null;
  let text: string;
  try {
    text = readFileSync(oidc.clientSecretFile, 'utf8');
  } catch (err) {
    throw new OidcError(
      `oidc.clientSecretFile ${JSON.stringify(oidc.clientSecretFile)} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      500,
      'misconfigured',
    );
  }
  const secret = text.replace(/\r?\n$/, '');
  if (!secret) {
    throw new OidcError(
      `oidc.clientSecretFile ${JSON.stringify(oidc.clientSecretFile)} is empty`,
      500,
      'misconfigured',
    );
  }
  return secret;
}

function claimString(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= 256 ? v : null;
}

/** A groups claim as a list: an array of strings, or one string (some providers send one group so). */
export function claimGroups(v: unknown): string[] {
  if (typeof v === 'string') return v ? [v] : [];
  if (!Array.isArray(v)) return [];
  return v
    .filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= 256)
    .slice(0, 1000);
}

/**
 * One configured provider. The discovered metadata is cached per access-file `oidc` section
 * (a changed section discovers again); a failed discovery is not cached, so a provider that comes
 * back works on the next login.
 */
export class OidcProvider {
  private discovered: { key: string; config: client.Configuration } | null = null;
  private inflight: { key: string; promise: Promise<client.Configuration> } | null = null;

  constructor(
    private readonly log: Logger,
    private readonly timeoutSeconds = OIDC_TIMEOUT_SECONDS,
  ) {}

  /** The discovered configuration, from the cache when the section and secret are unchanged. */
  async configuration(oidc: OidcConfig): Promise<client.Configuration> {
    const secret = readClientSecret(oidc);
    const key = JSON.stringify([oidc.issuer, oidc.clientId, secret]);
    if (this.discovered?.key === key) return this.discovered.config;
    if (this.inflight?.key === key) return this.inflight.promise;
    const promise = this.discover(oidc, secret).then(
      (config) => {
        if (this.inflight?.promise === promise) this.inflight = null;
        this.discovered = { key, config };
        return config;
      },
      (err: unknown) => {
        if (this.inflight?.promise === promise) this.inflight = null;
        throw err;
      },
    );
    this.inflight = { key, promise };
    return promise;
  }

  private async discover(oidc: OidcConfig, secret: string | null): Promise<client.Configuration> {
    const issuer = new URL(oidc.issuer);
    const insecure = issuer.protocol === 'http:';
    if (insecure && !LOOPBACK.has(issuer.hostname)) {
      throw new OidcError(
        `oidc.issuer ${oidc.issuer} is plain HTTP: tokens would cross the network in clear text; use the provider's https:// address (http is accepted only on this machine: 127.0.0.1, localhost)`,
        500,
        'misconfigured',
      );
    }
    const started = Date.now();
    try {
      const config = await client.discovery(
        issuer,
        oidc.clientId,
        secret ?? undefined,
        secret ? client.ClientSecretBasic(secret) : client.None(),
        {
          timeout: this.timeoutSeconds,
          ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
        },
      );
      this.log.info(
        {
          issuer: oidc.issuer,
          ms: Date.now() - started,
          endSession: !!config.serverMetadata().end_session_endpoint,
        },
        'OpenID provider discovered',
      );
      return config;
    } catch (err) {
      const reason = describe(err);
      this.log.warn(
        { issuer: oidc.issuer, err: reason, ms: Date.now() - started },
        'OpenID provider discovery failed',
      );
      throw new OidcError(
        `the sign-in provider ${oidc.issuer} did not answer its discovery request (${reason})`,
        502,
        'provider-unreachable',
      );
    }
  }

  /** Starts a login: the provider's authorization URL and what the callback must check. */
  async begin(
    oidc: OidcConfig,
    redirectUri: string,
    next: string,
    ttlMs: number,
  ): Promise<{ url: URL; pending: PendingLogin }> {
    const config = await this.configuration(oidc);
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const scopes = new Set<string>(['openid', ...(oidc.scopes ?? DEFAULT_SCOPES)]);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: [...scopes].join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, pending: { state, nonce, codeVerifier, next, redirectUri, expiresAt: Date.now() + ttlMs } };
  }

  /**
   * Finishes a login: checks the provider's answer (state, issuer), exchanges the code (PKCE
   * verifier), validates the ID token (signature, audience, nonce) and reads the user name and
   * groups, from the ID token or else from UserInfo.
   */
  async finish(
    oidc: OidcConfig,
    callbackQuery: URLSearchParams,
    pending: PendingLogin,
  ): Promise<OidcIdentity> {
    const config = await this.configuration(oidc);
    const currentUrl = new URL(pending.redirectUri);
    currentUrl.search = callbackQuery.toString();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      if (err instanceof client.AuthorizationResponseError) {
        throw new OidcError(
          `the sign-in provider refused the login: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`,
          403,
          'refused',
        );
      }
      const unreachable = isNetworkError(err);
      throw new OidcError(
        unreachable
          ? `the sign-in provider ${oidc.issuer} did not answer the token request (${describe(err)})`
          : `the sign-in provider's answer was not accepted (${describe(err)})`,
        unreachable ? 502 : 400,
        unreachable ? 'provider-unreachable' : 'invalid-response',
      );
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new OidcError('the sign-in provider sent no ID token', 400, 'invalid-response');
    let claims: Record<string, unknown> = { ...idClaims };
    const lacks = (c: Record<string, unknown>) =>
      claimString(c[oidc.usernameClaim]) === null || !(oidc.groupsClaim in c);
    if (lacks(claims) && config.serverMetadata().userinfo_endpoint) {
      try {
        const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
        claims = { ...claims, ...info };
      } catch (err) {
        throw new OidcError(
          `the sign-in provider's UserInfo request failed (${describe(err)})`,
          isNetworkError(err) ? 502 : 400,
          isNetworkError(err) ? 'provider-unreachable' : 'invalid-response',
        );
      }
    }
    const username = claimString(claims[oidc.usernameClaim]);
    if (!username) {
      throw new OidcError(
        `the sign-in provider sent no "${oidc.usernameClaim}" claim (oidc.usernameClaim) for this user; ask its administrator to add it to the ID token or UserInfo`,
        403,
        'misconfigured',
      );
    }
    return { username, groups: claimGroups(claims[oidc.groupsClaim]), sub: idClaims.sub };
  }

  /** The provider's RP-initiated logout URL returning to `postLogoutRedirectUri`; null when the provider has none or is not reachable. */
  async endSessionUrl(oidc: OidcConfig, postLogoutRedirectUri: string): Promise<URL | null> {
    let config: client.Configuration;
    try {
      config = await this.configuration(oidc);
    } catch {
      return null;
    }
    if (!config.serverMetadata().end_session_endpoint) return null;
    return client.buildEndSessionUrl(config, { post_logout_redirect_uri: postLogoutRedirectUri });
  }
}

function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } } | null;
  if (!e) return false;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
  if (e.code === 'OAUTH_TIMEOUT') return true;
  const cause = e.cause;
  return (
    (e.name === 'TypeError' && cause !== undefined) ||
    /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|UND_ERR/.test(
      `${e.code ?? ''} ${cause?.code ?? ''}`,
    )
  );
}

/** A short reason without secrets (no tokens are part of these messages). */
function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const parts = [e?.message ?? String(err)];
  const causeCode = e?.cause?.code;
  if (causeCode && !parts[0]!.includes(causeCode)) parts.push(causeCode);
  return parts.join(': ').slice(0, 300);
}
