/**
 * The dashboard's one HTTP client: same-origin `GET`s with a timeout, the display token from the
 * URL as a bearer token (nothing ever prompts), and every answer checked against the response
 * schema `@gpupulse/protocol` defines for it (the contract the server is built from) — no
 * hand-written guards. One result shape: `ok`, `missing` (404/501: no such subject), `error`.
 */
import {
  type AlertsList,
  AlertsListSchema,
  type HistoryResponse,
  HistoryResponseSchema,
  type NodeProcesses,
  NodeProcessesSchema,
  type NudgesList,
  NudgesListSchema,
  type ProjectsMeta,
  ProjectsMetaSchema,
  type ProjectsUsage,
  ProjectsUsageSchema,
  type UsageGroupBy,
  type UsagePeriod,
  type UsageResponse,
  UsageResponseSchema,
  type WhoAmI,
  WhoAmISchema,
} from '@gpupulse/protocol';
import { displayToken } from './socket.ts';

export type { NodeProcess, NodeProcesses } from '@gpupulse/protocol';

export type ApiResult<T> =
  | { kind: 'ok'; data: T }
  | { kind: 'missing'; status: number }
  | { kind: 'error'; message: string; status?: number };

export const API_TIMEOUT_MS = 15_000;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** What the client needs of a schema (a zod schema; structural, so the web needs no zod import). */
export interface ResponseSchema<T> {
  safeParse(
    body: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };
}

function firstIssue(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  const i = error.issues[0];
  if (!i) return 'unexpected response';
  const at = i.path.map(String).join('.');
  return `unexpected response${at ? ` at ${at}` : ''}: ${i.message}`;
}

export async function getApi<T>(
  url: string,
  schema: ResponseSchema<T>,
  options: { signal?: AbortSignal; fetch?: FetchLike } = {},
): Promise<ApiResult<T>> {
  const timeout = AbortSignal.timeout(API_TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    const token = displayToken();
    const res = await (options.fetch ?? fetch)(url, {
      signal,
      credentials: 'same-origin',
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    if (res.status === 404 || res.status === 501) return { kind: 'missing', status: res.status };
    if (!res.ok) return { kind: 'error', status: res.status, message: `HTTP ${res.status}` };
    const parsed = schema.safeParse(await res.json());
    return parsed.success
      ? { kind: 'ok', data: parsed.data }
      : { kind: 'error', message: firstIssue(parsed.error) };
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
}

// ---- the endpoints the views read ----

export const api = {
  me: (signal?: AbortSignal) => getApi<WhoAmI>('/api/v1/me', WhoAmISchema, { signal }),
  projectsMeta: (signal?: AbortSignal) =>
    getApi<ProjectsMeta>('/api/v1/projects/meta', ProjectsMetaSchema, { signal }),
  projectsUsage: (signal?: AbortSignal) =>
    getApi<ProjectsUsage>('/api/v1/projects', ProjectsUsageSchema, { signal }),
  alerts: (signal?: AbortSignal) => getApi<AlertsList>('/api/v1/alerts', AlertsListSchema, { signal }),
  history: (url: string, signal?: AbortSignal) =>
    getApi<HistoryResponse>(url, HistoryResponseSchema, { signal }),
  usage: (url: string, signal?: AbortSignal) => getApi<UsageResponse>(url, UsageResponseSchema, { signal }),
  nudges: (url: string, signal?: AbortSignal) => getApi<NudgesList>(url, NudgesListSchema, { signal }),
  processes: (node: string, signal?: AbortSignal) =>
    getApi<NodeProcesses>(processesUrl(node), NodeProcessesSchema, { signal }),
};

export function processesUrl(node: string): string {
  return `/api/v1/nodes/${encodeURIComponent(node)}/processes`;
}

/** `/api/v1/usage?from=&to=&groupBy=&period=[&format=csv]` (times floored to ms). */
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
