// Who may speak for which node on `/agent`: agent tokens (bound to node-name globs in the access
// file, or unbound in GPUPULSE_AGENT_TOKENS), the one-token-per-live-node rule, and the handshake
// and report rate limits. Tokens are compared as SHA-256 digests in constant time and never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import picomatch from 'picomatch';

/** One `agents:` entry of the access file: a token (as its SHA-256 hex) and the nodes it may report. */
export interface AgentBinding {
  name: string;
  sha256: string;
  nodes: readonly string[];
}

/** What the agent guard needs of the access registry (hot-reloaded). */
export interface AgentAccessSource {
  readonly current: { readonly agents?: readonly AgentBinding[] | null };
  /** Called after each successful reload. */
  onChange(fn: () => void): unknown;
}

export interface TokenBucketSpec {
  /** Tokens the bucket holds when full (the burst). */
  burst: number;
  /** Tokens added per second. */
  perSecond: number;
}

/**
 * Rate limits on `/agent`. Defaults (`DEFAULT_AGENT_LIMITS`):
 * - handshakes per node and token: burst 10, then 10 per minute (an agent restarting or a flaky
 *   link reconnects far less often; a replacement storm is cut off after 10 tries);
 * - handshakes per source address: burst 60, then 60 per minute; loopback addresses are exempt
 *   (the simulator, the load tests and a reverse proxy on the same host connect from there);
 * - reports per node: burst 100, then 50 per second (an agent sends one live report per interval,
 *   ≥ 100 ms, plus at most ~13 replay batches per second).
 */
export interface AgentRateLimits {
  handshakesPerNode: TokenBucketSpec;
  handshakesPerAddress: TokenBucketSpec;
  reportsPerNode: TokenBucketSpec;
  /** Loopback addresses are not limited per address. */
  exemptLoopback: boolean;
  /** Bound on the keys each limiter tracks (least recently used ones go first). */
  maxKeys: number;
  /** A refusal is logged once per this long per source address; the rest are counted. */
  refusalLogIntervalMs: number;
}

export const DEFAULT_AGENT_LIMITS: AgentRateLimits = {
  handshakesPerNode: { burst: 10, perSecond: 10 / 60 },
  handshakesPerAddress: { burst: 60, perSecond: 60 / 60 },
  reportsPerNode: { burst: 100, perSecond: 50 },
  exemptLoopback: true,
  maxKeys: 100_000,
  refusalLogIntervalMs: 60_000,
};

export function resolveLimits(over: Partial<AgentRateLimits> | undefined): AgentRateLimits {
  return { ...DEFAULT_AGENT_LIMITS, ...over };
}

/** Token buckets by key, bounded: at most `maxKeys` keys, the least recently used dropped first. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    private readonly spec: TokenBucketSpec,
    private readonly maxKeys: number,
  ) {}

  /** Takes one token for `key`; false when the bucket is empty (the caller refuses). */
  take(key: string, now: number): boolean {
    const { burst, perSecond } = this.spec;
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: Map order is the LRU order
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
      b.at = now;
    } else {
      b = { tokens: burst, at: now };
      // Full: drop the least recently used tenth at once (amortized O(1) per key, even under a flood).
      if (this.buckets.size >= this.maxKeys) dropOldest(this.buckets, Math.ceil(this.maxKeys / 10));
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** Logs at most once per interval per source; counts what it held back (bounded). */
export class OncePerInterval {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys: number,
  ) {}

  /** null: stay quiet; else log now, with the number of refusals held back since the last line. */
  check(source: string, now: number): { suppressed: number } | null {
    const e = this.last.get(source);
    if (e && now - e.at < this.intervalMs) {
      e.suppressed++;
      return null;
    }
    const suppressed = e?.suppressed ?? 0;
    if (e) this.last.delete(source);
    else if (this.last.size >= this.maxKeys) dropOldest(this.last, Math.ceil(this.maxKeys / 10));
    this.last.set(source, { at: now, suppressed: 0 });
    return { suppressed };
  }
}

/** Deletes the first `n` keys of a Map (its insertion order, kept as least-recently-used order). */
function dropOldest(map: Map<string, unknown>, n: number): void {
  for (const k of map.keys()) {
    if (n-- <= 0) break;
    map.delete(k);
  }
}

export const tokenDigest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/**
 * The rate-limit key of a source address: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64 —
 * one host usually holds a whole /64, so per-address limits must not count each of its addresses.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0]!.toLowerCase();
  const [head = '', tail] = bare.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

interface CompiledBinding {
  name: string;
  digest: Buffer;
  nodes: readonly string[];
  match: (node: string) => boolean;
}

export type Authorization =
  | { ok: true; name: string; bound: boolean }
  | { ok: false; reason: 'token' | 'node'; message: string };

/**
 * The agent tokens in effect: `GPUPULSE_AGENT_TOKENS` (any node) and the access file's `agents:`
 * (only the nodes their globs match; re-read on every call, so reloads take effect at once).
 */
export class AgentAuthority {
  private readonly envDigests: Buffer[];
  private compiledFrom: readonly AgentBinding[] | null | undefined = undefined;
  private compiled: CompiledBinding[] = [];
  /** All-zero digest compared when nothing is configured, so the work per check stays alike. */
  private static readonly NONE = Buffer.alloc(32);

  constructor(
    envTokens: readonly string[],
    private readonly access: AgentAccessSource | null = null,
  ) {
    this.envDigests = envTokens.map(tokenDigest);
  }

  /** Unbound tokens (from GPUPULSE_AGENT_TOKENS). */
  get unboundCount(): number {
    return this.envDigests.length;
  }

  /** True when any agent token is configured (environment or access file). */
  get configured(): boolean {
    return this.envDigests.length > 0 || this.bindings().length > 0;
  }

  private bindings(): CompiledBinding[] {
    const agents = this.access?.current.agents ?? null;
    if (agents !== this.compiledFrom) {
      this.compiledFrom = agents;
      this.compiled = (agents ?? []).flatMap((a) => {
        if (!/^[0-9a-f]{64}$/i.test(a.sha256)) return [];
        const globs = [...a.nodes];
        const match = globs.length > 0 ? picomatch(globs, { dot: true }) : () => false;
        return [{ name: a.name, digest: Buffer.from(a.sha256, 'hex'), nodes: globs, match }];
      });
    }
    return this.compiled;
  }

  /**
   * May the token with this digest report as `node`? Compares against every configured digest
   * (constant time, no early exit); the refusal message names the rule, never the token.
   */
  authorize(digest: Buffer, node: string): Authorization {
    let unbound = -1;
    for (let i = 0; i < this.envDigests.length; i++) {
      if (timingSafeEqual(this.envDigests[i]!, digest) && unbound < 0) unbound = i;
    }
    const matched: CompiledBinding[] = [];
    for (const b of this.bindings()) if (timingSafeEqual(b.digest, digest)) matched.push(b);
    if (unbound < 0 && matched.length === 0) timingSafeEqual(AgentAuthority.NONE, digest);
    if (unbound >= 0) return { ok: true, name: `GPUPULSE_AGENT_TOKENS[${unbound}]`, bound: false };
    if (matched.length === 0) return { ok: false, reason: 'token', message: 'invalid agent token' };
    const allowed = matched.find((b) => b.match(node));
    if (allowed) return { ok: true, name: allowed.name, bound: true };
    const rule = matched
      .map((b) => `agent token '${b.name}' may report only nodes matching ${b.nodes.join(', ') || '(none)'}`)
      .join('; ');
    return { ok: false, reason: 'node', message: `${rule}; refused node ${node}` };
  }
}
