/**
 * HTTP calls of the detail, My work and Trends views, with a timeout and one result shape:
 * `ok`, `missing` (404: the endpoint or the subject does not exist yet), or `error`.
 * Responses are checked for the fields the views read; anything else is an `error`.
 */
import type {
  GpuProcess,
  HistoryResponse,
  ProjectsMeta,
  RedactedField,
  UsageGroupBy,
  UsagePeriod,
  UsageResponse,
} from '@gpupulse/protocol';
import { displayToken } from '../services/socket.ts';

export type ApiResult<T> =
  | { kind: 'ok'; data: T }
  | { kind: 'missing'; status: number }
  | { kind: 'error'; message: string; status?: number };

export const API_TIMEOUT_MS = 15_000;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export async function getJson<T>(
  url: string,
  check: (body: unknown) => body is T,
  options: { signal?: AbortSignal; fetch?: FetchLike } = {},
): Promise<ApiResult<T>> {
  const timeout = AbortSignal.timeout(API_TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    const token = displayToken();
    const res = await (options.fetch ?? fetch)(url, {
      signal,
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    if (res.status === 404 || res.status === 501) return { kind: 'missing', status: res.status };
    if (!res.ok) return { kind: 'error', status: res.status, message: `HTTP ${res.status}` };
    const body: unknown = await res.json();
    return check(body) ? { kind: 'ok', data: body } : { kind: 'error', message: 'unexpected response' };
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export function isHistoryResponse(v: unknown): v is HistoryResponse {
  return (
    isObject(v) &&
    typeof v.tier === 'string' &&
    Array.isArray(v.series) &&
    v.series.every((s) => isObject(s) && typeof s.metric === 'string' && Array.isArray(s.points))
  );
}

export function isUsageResponse(v: unknown): v is UsageResponse {
  return (
    isObject(v) &&
    Array.isArray(v.rows) &&
    v.rows.every(
      (r) =>
        isObject(r) &&
        typeof r.key === 'string' &&
        typeof r.periodStart === 'number' &&
        typeof r.gpuHours === 'number',
    )
  );
}

export function isProjectsMeta(v: unknown): v is ProjectsMeta {
  return (
    isObject(v) &&
    Array.isArray(v.projects) &&
    v.projects.every((p) => isObject(p) && typeof p.id === 'string')
  );
}

/** A GPU process as `GET /api/v1/nodes/:name/processes` returns it: the agent's facts plus the server's attribution. */
export type NodeProcess = GpuProcess & {
  project?: string | null;
  gpuIndex?: number | null;
  /** Fields the server left out for the asker's role (another user's process, for a viewer). */
  redacted?: RedactedField[];
};
export interface NodeProcesses {
  node?: string;
  serverTime?: number;
  processes: NodeProcess[];
}

export function isNodeProcesses(v: unknown): v is NodeProcesses {
  return (
    isObject(v) &&
    Array.isArray(v.processes) &&
    v.processes.every((p) => isObject(p) && typeof p.pid === 'number' && typeof p.gpuUuid === 'string')
  );
}

export function processesUrl(node: string): string {
  return `/api/v1/nodes/${encodeURIComponent(node)}/processes`;
}

export function usageUrl(q: {
  from: number;
  to: number;
  groupBy: UsageGroupBy;
  period: UsagePeriod;
  format?: 'csv';
}): string {
  const p = new URLSearchParams({
    from: String(Math.floor(q.from)),
    to: String(Math.floor(q.to)),
    groupBy: q.groupBy,
    period: q.period,
  });
  if (q.format) p.set('format', q.format);
  return `/api/v1/usage?${p.toString()}`;
}

export const PROJECTS_META_URL = '/api/v1/projects/meta';
