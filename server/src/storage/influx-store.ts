import type { StorageInfo, StorageKind } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import { type LineStats, newLineStats, toLineProtocol } from './line-protocol.ts';
import {
  type EncodedPoint,
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  type QuerySeries,
  StoreQueryError,
  StoreWriteError,
} from './metric-store.ts';

export interface InfluxStoreOptions {
  /**
   * Base URL of the InfluxDB HTTP API, e.g. `http://127.0.0.1:8086` (a path prefix is kept). Only
   * its origin is ever shown (health, dashboards, logs); credentials belong in `token` or
   * `username`/`password`, and a URL that carries them is refused.
   */
  url: string;
  database: string;
  /** Sent as `Authorization: Token …` (InfluxDB 2.x / 3.x). */
  token?: string | null;
  /** Sent as HTTP Basic auth (InfluxDB 1.x; 2.x/3.x v1 compatibility). */
  username?: string | null;
  password?: string | null;
  /** `influxdb` or `managed-influxdb` (what /api/v1/health reports). */
  kind?: Extract<StorageKind, 'influxdb' | 'managed-influxdb'>;
  /** Timeout of every HTTP call, ms (default 10 s for writes and queries, 3 s for pings). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Starts and ends the retention policy in an encoded point that has one: `\0rp\0line`. A line
 * never starts with NUL (names carry no control character: line-protocol.ts).
 */
const RP_MARK = '\u0000';

/**
 * InfluxDB through the v1 HTTP API only: line protocol to `/write`, InfluxQL on `/query`.
 * Served by InfluxDB 1.x, 2.x (v1 compatibility + DBRP) and 3.x alike.
 */
export class InfluxStore implements MetricStore {
  readonly kind: Extract<StorageKind, 'influxdb' | 'managed-influxdb'>;
  readonly url: string;
  /** `scheme://host:port` of `url`: the only part of it ever shown. */
  readonly origin: string;
  readonly database: string;
  /** What line protocol left out (fields outside int64, non-finite numbers, timestamps out of range). */
  readonly lineStats: LineStats = newLineStats();
  private readonly token: string | null;
  private readonly username: string | null;
  private readonly password: string | null;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private up: boolean | null = null;
  private lastError: string | null = null;
  private closed = false;

  constructor(opts: InfluxStoreOptions) {
    const parsed = new URL(opts.url);
    if (parsed.username || parsed.password) {
      throw new Error(
        'the InfluxDB URL must not carry credentials; use GPUPULSE_INFLUX_USER/GPUPULSE_INFLUX_PASSWORD or GPUPULSE_INFLUX_TOKEN',
      );
    }
    this.url = opts.url.replace(/\/+$/, '');
    this.origin = parsed.origin;
    this.database = opts.database;
    this.token = opts.token || null;
    this.username = opts.username || null;
    this.password = opts.password || null;
    this.kind = opts.kind ?? 'influxdb';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.logger = opts.logger;
  }

  /** Pings, then runs `CREATE DATABASE` (idempotent on 1.x; on 2.x/3.x create the bucket/database yourself). */
  async init(): Promise<void> {
    if (!(await this.ping())) {
      throw new Error(
        `InfluxDB at ${this.origin} does not answer /ping${this.lastError ? `: ${this.lastError}` : ''}`,
      );
    }
    try {
      await this.request('POST', '/query', { q: `CREATE DATABASE ${quoteIdent(this.database)}` }, undefined);
    } catch (err) {
      this.logger?.warn(
        { err: errMessage(err), database: this.database },
        'could not CREATE DATABASE (fine on InfluxDB 2.x/3.x if the bucket/database exists)',
      );
    }
  }

  /**
   * A point as a line of line protocol (see line-protocol.ts), prefixed by its retention policy
   * when it has one; null (counted in `lineStats`) when line protocol cannot carry it.
   */
  encode(p: MetricPoint): EncodedPoint | null {
    const stats = this.lineStats;
    const fieldsBefore = stats.fieldsDropped;
    const line = toLineProtocol(p, stats);
    if (fieldsBefore === 0 && stats.fieldsDropped > 0) {
      this.logger?.error(
        { reason: stats.lastReason },
        'a field could not be written as line protocol and was left out (counted; logged once)',
      );
    }
    if (line === null) return null;
    return p.rp ? `${RP_MARK}${p.rp}${RP_MARK}${line}` : line;
  }

  /**
   * Writes one batch: one request per retention policy. When InfluxDB refuses part of it (a 4xx
   * such as `partial write: … dropped=N`), the other requests are still made and one
   * non-retryable `StoreWriteError` reports the exact number of points not stored (`dropped`).
   * A retryable failure (network, 5xx, 429) throws at once; a retry of the whole batch is
   * harmless (same series and time overwrite).
   */
  writeEncoded(points: readonly EncodedPoint[]): Promise<void> {
    return this.writeGroups(points, 0);
  }

  /**
   * `encode` + `writeEncoded`; points line protocol cannot carry count in the error's `dropped`
   * (with the reason) while the others are written.
   */
  write(points: readonly MetricPoint[]): Promise<void> {
    const lines: EncodedPoint[] = [];
    for (const p of points) {
      const line = this.encode(p);
      if (line !== null) lines.push(line);
    }
    return this.writeGroups(lines, points.length - lines.length);
  }

  private async writeGroups(points: readonly EncodedPoint[], invalid: number): Promise<void> {
    if (this.closed) throw new StoreWriteError('store is closed', { retryable: false });
    // One request per retention policy (rollup tiers go to their own RP on InfluxDB 1.x).
    const byRp = new Map<string, string[]>();
    for (const e of points) {
      let rp = '';
      let line = e;
      if (e.charCodeAt(0) === 0) {
        const end = e.indexOf(RP_MARK, 1);
        rp = e.slice(1, end);
        line = e.slice(end + 1);
      }
      const list = byRp.get(rp);
      if (list) list.push(line);
      else byRp.set(rp, [line]);
    }
    let dropped = invalid;
    let status: number | null = null;
    const reasons: string[] = [];
    if (invalid > 0)
      reasons.push(`${invalid} point(s) cannot be written as line protocol (${this.lineStats.lastReason})`);
    for (const [rp, lines] of byRp) {
      try {
        await this.writeLines(lines, rp);
      } catch (err) {
        if (!(err instanceof StoreWriteError) || err.retryable) throw err;
        dropped += Math.min(lines.length, err.dropped ?? lines.length);
        status ??= err.status;
        reasons.push(err.message);
      }
    }
    if (reasons.length > 0) {
      throw new StoreWriteError(reasons.join('; '), { retryable: false, status, dropped });
    }
  }

  private async writeLines(lines: string[], rp: string): Promise<void> {
    let res: Response;
    try {
      const params: Record<string, string> = { db: this.database, precision: 'ms' };
      if (rp) params.rp = rp;
      res = await this.request('POST', '/write', params, lines.join('\n'));
    } catch (err) {
      this.setUp(false, errMessage(err));
      throw new StoreWriteError(`InfluxDB write failed: ${errMessage(err)}`, { retryable: true });
    }
    if (res.status === 204 || res.status === 200) {
      await res.body?.cancel().catch(() => {});
      this.setUp(true);
      return;
    }
    // The whole body is read before anything is cut: the dropped count comes last.
    const reason = await readError(res);
    const retryable = res.status >= 500 || res.status === 429;
    if (retryable) this.setUp(false, `HTTP ${res.status}: ${clip(reason)}`);
    else this.setUp(true);
    throw new StoreWriteError(`InfluxDB write answered ${res.status}: ${clip(reason)}`, {
      retryable,
      status: res.status,
      dropped: retryable ? null : droppedCount(reason, lines.length),
    });
  }

  async query(influxql: string): Promise<QueryResult> {
    let res: Response;
    try {
      res = await this.request('POST', '/query', { db: this.database, epoch: 'ms', q: influxql }, undefined);
    } catch (err) {
      throw new StoreQueryError(`InfluxDB query failed: ${errMessage(err)}`);
    }
    if (res.status !== 200) throw new StoreQueryError(await readError(res), res.status);
    const body = (await res.json()) as {
      results?: Array<{ series?: QuerySeries[]; error?: string }>;
      error?: string;
    };
    if (body.error) throw new StoreQueryError(body.error, res.status);
    const first = body.results?.[0];
    if (first?.error) throw new StoreQueryError(first.error, res.status);
    return { series: first?.series ?? [] };
  }

  async ping(): Promise<boolean> {
    try {
      const res = await this.request('GET', '/ping', {}, undefined, Math.min(this.timeoutMs, 3000));
      await res.body?.cancel().catch(() => {});
      const ok = res.status === 204 || res.status === 200;
      this.setUp(ok, ok ? undefined : `ping answered HTTP ${res.status}`);
      return ok;
    } catch (err) {
      this.setUp(false, errMessage(err));
      return false;
    }
  }

  info(): StorageInfo {
    const ok = this.up !== false;
    return {
      kind: this.kind,
      ok,
      warning: ok
        ? null
        : `InfluxDB at ${this.origin} is unreachable${this.lastError ? ` (${this.lastError})` : ''}`,
      ...(ok ? {} : { warningCode: 'influx-unreachable' as const }),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private setUp(up: boolean, error?: string): void {
    if (!up) this.lastError = error ?? null;
    if (this.up === up) return;
    const first = this.up === null;
    this.up = up;
    if (up) {
      this.lastError = null;
      if (!first) this.logger?.info({ url: this.origin }, 'storage up');
    } else {
      this.logger?.error({ url: this.origin, err: error }, 'storage down');
    }
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    params: Record<string, string>,
    body: string | undefined,
    timeoutMs = this.timeoutMs,
  ): Promise<Response> {
    const url = new URL(this.url + path);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const headers: Record<string, string> = {};
    // Basic auth (InfluxDB 1.x and 2.x/3.x v1 compatibility), not `u`/`p` in the URL, which
    // proxies and access logs would keep.
    if (this.username) {
      headers.authorization = `Basic ${Buffer.from(`${this.username}:${this.password ?? ''}`).toString('base64')}`;
    }
    if (this.token) headers.authorization = `Token ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'text/plain; charset=utf-8';
    return fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  }
}

/**
 * Quotes an InfluxQL identifier (database, measurement, tag key). InfluxQL's scanner refuses a raw
 * newline inside quotes, so it is written as the escape `\n` (which it reads back as a newline).
 */
export function quoteIdent(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Quotes an InfluxQL string literal (tag values); `\`, `'` and newlines escaped. */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
}

/** The whole error text of an answer (the JSON `error`/`message` when there is one); never cut. */
async function readError(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: string; message?: string };
    return parsed.error ?? parsed.message ?? text;
  } catch {
    return text || res.statusText || `HTTP ${res.status}`;
  }
}

/** An error text shortened for messages and logs (after everything needed was read from it). */
const clip = (s: string, max = 500) => (s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s);

/**
 * Points a refused write did not store, from InfluxDB's full error text: `dropped=N` of a partial
 * write (the last one, which is InfluxDB's own count), at least one per `unable to parse` line
 * (InfluxDB 1.x says `dropped=0` for lines it could not parse), and the whole request when the
 * answer says neither (the write was refused as a whole).
 */
export function droppedCount(reason: string, lines: number): number {
  // InfluxDB puts ` dropped=N` at the very end; a tag value quoted earlier cannot fake it.
  const count = /\bdropped=(\d+)\s*$/.exec(reason);
  const unparsed = reason.match(/unable to parse '/g)?.length ?? 0;
  if (!count && unparsed === 0) return lines;
  const n = count ? Number(count[1]) : 0;
  return Math.min(lines, Math.max(n, unparsed));
}

function errMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message} (${cause.message})`;
    return err.message;
  }
  return String(err);
}
