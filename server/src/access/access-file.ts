/**
 * The access file (`GPUPULSE_ACCESS_FILE`, YAML or JSON): the anonymous role, tokens for people
 * and wall screens, agent tokens bound to node names, single sign-on and a trusted proxy.
 * `parseAccessFile` is pure (text in, config or a located error out); `AccessRegistry` holds the
 * config in effect and reloads it on change (watch + poll; a bad reload keeps the last good one).
 *
 * Secrets are stored as SHA-256 hex digests of the token; lookups compare every digest in
 * constant time (no early exit). Tokens are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parseConfigDocument } from '../config-document.ts';
import { FileWatch } from '../file-watch.ts';
import type { GroupRoles, Role } from './roles.ts';

// ---- addresses ----

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
export function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/** Checks `a.b.c.d/n`, `a:b::/n` or a bare address; returns an error message or null. */
export function cidrProblem(cidr: string): string | null {
  const [addr, bits, extra] = cidr.trim().split('/');
  if (extra !== undefined || !addr) return 'must be an address or CIDR, e.g. 10.0.0.0/8';
  const v4 = isIPv4(addr);
  if (!v4 && !isIPv6(addr)) return `"${addr}" is not an IPv4 or IPv6 address`;
  if (bits !== undefined) {
    const n = Number(bits);
    if (!/^\d+$/.test(bits) || n > (v4 ? 32 : 128)) return `prefix length must be 0..${v4 ? 32 : 128}`;
  }
  return null;
}

/** A set of CIDR ranges (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`, bare addresses). */
export class AddressList {
  private readonly list = new BlockList();
  readonly cidrs: readonly string[];

  /** Throws on a bad entry (validate first with `cidrProblem`). */
  constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs;
    for (const raw of cidrs) {
      const problem = cidrProblem(raw);
      if (problem) throw new Error(`${raw}: ${problem}`);
      const [addr, bits] = raw.trim().split('/') as [string, string | undefined];
      const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
      const prefix = bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits);
      this.list.addSubnet(addr, prefix, type);
    }
  }

  get empty(): boolean {
    return this.cidrs.length === 0;
  }

  has(address: string | undefined | null): boolean {
    if (!address || this.cidrs.length === 0) return false;
    const a = normalizeAddress(address);
    if (isIPv4(a)) return this.list.check(a, 'ipv4');
    if (isIPv6(a)) return this.list.check(a, 'ipv6');
    return false;
  }
}

// ---- secrets ----

export const sha256Hex = (secret: string): string =>
  createHash('sha256').update(secret, 'utf8').digest('hex');

/**
 * The entry whose `sha256` is the digest of `secret`, comparing against every entry in constant
 * time (the loop never exits early, so the time does not say which entry matched or how far).
 */
export function findBySecret<T extends { sha256: string }>(entries: readonly T[], secret: string): T | null {
  const digest = createHash('sha256').update(secret, 'utf8').digest();
  let found: T | null = null;
  for (const e of entries) {
    const other = Buffer.from(e.sha256, 'hex');
    const equal = other.length === digest.length && timingSafeEqual(other, digest);
    if (equal && found === null) found = e;
  }
  return found;
}

// ---- schema ----

const name = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'is longer than 128 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, 'must be letters, digits, ".", "_", "@" or "-"');
const sha256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be the 64 hex digits of SHA-256 of the token (sha256sum)')
  .transform((s) => s.toLowerCase());
const groupList = z.array(z.string().min(1).max(256)).max(1000);
const GroupRolesSchema = z.strictObject({
  admin: groupList.optional(),
  viewer: groupList.optional(),
  display: groupList.optional(),
});
const cidr = z
  .string()
  .max(64)
  .superRefine((v, ctx) => {
    const problem = cidrProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name')
  .transform((s) => s.toLowerCase());
const httpsOrHttpUrl = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      return ['http:', 'https:'].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

export const TokenEntrySchema = z.strictObject({
  name,
  role: z.enum(['display', 'viewer', 'admin']),
  sha256,
  /** The Unix user whose processes count as "own" for this token (optional). */
  user: z.string().min(1).max(256).nullable().optional(),
});
export type TokenEntry = z.infer<typeof TokenEntrySchema>;

export const AgentEntrySchema = z.strictObject({
  name,
  sha256,
  /** Node names (globs, picomatch) this token may report as. */
  nodes: z.array(z.string().min(1).max(256)).min(1, 'must name at least one node or glob'),
});
export type AgentEntry = z.infer<typeof AgentEntrySchema>;

export const OidcSchema = z
  .strictObject({
    issuer: httpsOrHttpUrl,
    clientId: z.string().min(1).max(256),
    clientSecret: z.string().min(1).max(1024).optional(),
    clientSecretFile: z.string().min(1).max(4096).optional(),
    usernameClaim: z.string().min(1).max(128).default('preferred_username'),
    groupsClaim: z.string().min(1).max(128).default('groups'),
    scopes: z.array(z.string().min(1).max(128)).max(32).optional(),
    roles: GroupRolesSchema.default({}),
    redirectUrl: httpsOrHttpUrl.optional(),
  })
  .refine((o) => !(o.clientSecret && o.clientSecretFile), {
    message: 'set clientSecret or clientSecretFile, not both',
    path: ['clientSecretFile'],
  });
export type OidcConfig = z.infer<typeof OidcSchema>;

export const TrustedProxySchema = z.strictObject({
  userHeader: headerName,
  groupsHeader: headerName.optional(),
  from: z.array(cidr).min(1, 'must list the proxy addresses (e.g. 127.0.0.1/32)'),
  /** Groups → role; default: every user the proxy names is a viewer. */
  roles: GroupRolesSchema.default({ viewer: ['*'] }),
});

export const AccessFileSchema = z.strictObject({
  anonymous: z.enum(['none', 'display', 'viewer']).default('display'),
  tokens: z.array(TokenEntrySchema).default([]),
  agents: z.array(AgentEntrySchema).default([]),
  oidc: OidcSchema.nullable().optional(),
  trustedProxy: TrustedProxySchema.nullable().optional(),
});
export type AccessFile = z.infer<typeof AccessFileSchema>;

export interface TrustedProxyConfig {
  /** Lower-case header names. */
  userHeader: string;
  groupsHeader: string | null;
  from: AddressList;
  roles: GroupRoles;
}

/** The access configuration in effect. */
export interface AccessConfig {
  /** The role of a request without credentials. */
  anonymous: Exclude<Role, 'admin'>;
  tokens: readonly TokenEntry[];
  agents: readonly AgentEntry[];
  oidc: OidcConfig | null;
  trustedProxy: TrustedProxyConfig | null;
  /** Where it came from; null: the built-in default (no file). */
  file: string | null;
}

/** No access file: anonymous visitors get `display`, no tokens, no SSO, no proxy. */
export const DEFAULT_ACCESS: AccessConfig = Object.freeze({
  anonymous: 'display',
  tokens: [],
  agents: [],
  oidc: null,
  trustedProxy: null,
  file: null,
});

export class AccessFileError extends Error {
  constructor(
    message: string,
    readonly line: number | null = null,
  ) {
    super(message);
    this.name = 'AccessFileError';
  }
}

/**
 * Parses and validates an access file. Throws `AccessFileError` naming the file, the line and the
 * key path, e.g. `access.yaml:7: tokens[1].sha256: must be the 64 hex digits …`. Never puts a
 * value from the file in the message (it may be a secret).
 */
export function parseAccessFile(text: string, file = 'access file'): AccessConfig {
  const {
    data: f,
    lineOf,
    fail,
  } = parseConfigDocument(
    text,
    file,
    AccessFileSchema,
    (message, line) => new AccessFileError(message, line),
    { hideValues: true },
  );
  const names = new Set<string>();
  const digests = new Set<string>();
  for (const kind of ['tokens', 'agents'] as const) {
    f[kind].forEach((t, i) => {
      if (names.has(`${kind}:${t.name}`))
        fail(`${kind}[${i}].name: duplicate name "${t.name}"`, lineOf([kind, i, 'name']));
      names.add(`${kind}:${t.name}`);
      if (digests.has(t.sha256))
        fail(
          `${kind}[${i}].sha256: the same token is listed twice (tokens and agents must each have their own)`,
          lineOf([kind, i, 'sha256']),
        );
      digests.add(t.sha256);
    });
  }
  const tp = f.trustedProxy ?? null;
  return {
    anonymous: f.anonymous,
    tokens: f.tokens,
    agents: f.agents,
    oidc: f.oidc ?? null,
    trustedProxy: tp
      ? {
          userHeader: tp.userHeader,
          groupsHeader: tp.groupsHeader ?? null,
          from: new AddressList(tp.from),
          roles: tp.roles,
        }
      : null,
    file,
  };
}

// ---- registry ----

export interface AccessRegistryOptions {
  /** Absolute path; null: `DEFAULT_ACCESS`. */
  file: string | null;
  logger?: Logger;
  /** Debounce of watch events (default 250 ms). */
  debounceMs?: number;
  /** Fallback poll (default 10 s; 0: none). */
  pollMs?: number;
}

/**
 * Holds the access config in effect and reloads it when the file changes: `fs.watch` on the
 * directory (editors replace files by rename) with a debounce, a content hash so only real changes
 * count, and a poll as a fallback. A bad (re)load keeps the last good config and records why (with
 * the line). A file that fails on the FIRST load leaves `current` at the safest config: anonymous
 * `none`, no tokens (a typo must not open the server).
 */
export class AccessRegistry {
  readonly file: string | null;
  private config: AccessConfig;
  private hash: string | null = null;
  private failedHash: string | null = null;
  private lastError: string | null = null;
  private loadedAt: number | null = null;
  private watch: FileWatch | null = null;
  private readonly listeners = new Set<(c: AccessConfig) => void>();
  private readonly log: Logger | undefined;

  constructor(private readonly opts: AccessRegistryOptions) {
    this.file = opts.file;
    this.log = opts.logger;
    this.config = opts.file ? { ...DEFAULT_ACCESS, anonymous: 'none', file: opts.file } : DEFAULT_ACCESS;
  }

  /** The config in effect (the last good one). */
  get current(): AccessConfig {
    return this.config;
  }

  /** Why the last load failed (the previous config stays in effect); null when it succeeded. */
  get error(): string | null {
    return this.lastError;
  }

  status(): { file: string | null; loadedAt: number | null; error: string | null } {
    return { file: this.file, loadedAt: this.loadedAt, error: this.lastError };
  }

  /** Called with the new config after every successful load that changed it. */
  onChange(fn: (c: AccessConfig) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Reads the file now; true when a new config took effect. Never throws. */
  reload(): boolean {
    if (!this.file) return false;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      return this.failed(
        `${this.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.hash) {
      if (this.lastError) this.lastError = null;
      return false;
    }
    let next: AccessConfig;
    try {
      next = parseAccessFile(text, this.file);
    } catch (err) {
      return this.failed(
        err instanceof AccessFileError ? err.message : `${this.file}: ${(err as Error).message}`,
        hash,
      );
    }
    this.config = next;
    this.hash = hash;
    this.failedHash = null;
    this.lastError = null;
    this.loadedAt = Date.now();
    this.log?.info(
      {
        file: this.file,
        anonymous: next.anonymous,
        tokens: next.tokens.length,
        agents: next.agents.length,
        oidc: next.oidc !== null,
        trustedProxy: next.trustedProxy !== null,
      },
      'access file loaded',
    );
    for (const fn of this.listeners) {
      try {
        fn(next);
      } catch (err) {
        this.log?.error({ err }, 'access listener failed');
      }
    }
    return true;
  }

  /** Loads the file and starts watching its directory (and polling). `close()` stops. */
  start(): void {
    if (!this.file) return;
    if (this.hash === null) this.reload();
    this.watch?.close();
    this.watch = new FileWatch(this.file, {
      what: 'access file',
      reload: () => this.reload(),
      pollMs: this.opts.pollMs,
      debounceMs: this.opts.debounceMs,
      log: this.log,
    });
  }

  close(): void {
    this.watch?.close();
    this.watch = null;
  }

  private failed(message: string, hash?: string): false {
    if (hash === undefined || hash !== this.failedHash) {
      this.log?.error(
        { file: this.file, err: message },
        this.hash ? 'access file reload failed; keeping the last good config' : 'access file failed to load',
      );
    }
    this.failedHash = hash ?? null;
    this.lastError = message;
    return false;
  }
}
