import type { StorageInfo, StorageKind } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import {
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  type QuerySeries,
  StoreQueryError,
  StoreWriteError,
} from './metric-store.ts';
import { toLineProtocol } from './schema.ts';

export interface InfluxStoreOptions {
  /** Base URL of the InfluxDB HTTP API, e.g. `http://127.0.0.1:8086`. */
  url: string;
  database: string;
  /** Sent as `Authorization: Token …` (InfluxDB 2.x / 3.x). */
  token?: string | null;
  /** Sent as `u` / `p` query parameters (InfluxDB 1.x). */
  username?: string | null;
  password?: string | null;
  /** `influxdb` or `managed-influxdb` (what /api/v1/health reports). */
  kind?: Extract<StorageKind, 'influxdb' | 'managed-influxdb'>;
  /** Timeout of every HTTP call, ms (default 10 s for writes and queries, 3 s for pings). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * InfluxDB through the v1 HTTP API only: line protocol to `/write`, InfluxQL on `/query`.
 * Served by InfluxDB 1.x, 2.x (v1 compatibility + DBRP) and 3.x alike.
 */
export class InfluxStore implements MetricStore {
  readonly kind: Extract<StorageKind, 'influxdb' | 'managed-influxdb'>;
  readonly url: string;
  readonly database: string;
  private readonly token: string | null;
  private readonly username: string | null;
  private readonly password: string | null;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private up: boolean | null = null;
  private lastError: string | null = null;
  private closed = false;

  constructor(opts: InfluxStoreOptions) {
    this.url = opts.url.replace(/\/+$/, '');
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
        `InfluxDB at ${this.url} does not answer /ping${this.lastError ? `: ${this.lastError}` : ''}`,
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

  async write(points: readonly MetricPoint[]): Promise<void> {
    if (this.closed) throw new StoreWriteError('store is closed', { retryable: false });
    // One request per retention policy (rollup tiers go to their own RP on InfluxDB 1.x).
    const byRp = new Map<string, string[]>();
    for (const p of points) {
      const line = toLineProtocol(p);
      if (!line) continue;
      const rp = p.rp ?? '';
      const list = byRp.get(rp);
      if (list) list.push(line);
      else byRp.set(rp, [line]);
    }
    for (const [rp, lines] of byRp) await this.writeLines(lines, rp);
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
    const reason = await readError(res);
    const retryable = res.status >= 500 || res.status === 429;
    if (retryable) this.setUp(false, `HTTP ${res.status}: ${reason}`);
    else this.setUp(true);
    const dropped = /dropped=(\d+)/.exec(reason);
    throw new StoreWriteError(`InfluxDB write answered ${res.status}: ${reason}`, {
      retryable,
      status: res.status,
      dropped: dropped ? Number(dropped[1]) : null,
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
        : `InfluxDB at ${this.url} is unreachable${this.lastError ? ` (${this.lastError})` : ''}`,
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
      if (!first) this.logger?.info({ url: this.url }, 'storage up');
    } else {
      this.logger?.error({ url: this.url, err: error }, 'storage down');
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
    if (this.username) url.searchParams.set('u', this.username);
    if (this.password) url.searchParams.set('p', this.password);
    const headers: Record<string, string> = {};
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

async function readError(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: string; message?: string };
    return (parsed.error ?? parsed.message ?? text).slice(0, 500);
  } catch {
    return (text || res.statusText || `HTTP ${res.status}`).slice(0, 500);
  }
}

function errMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message} (${cause.message})`;
    return err.message;
  }
  return String(err);
}
