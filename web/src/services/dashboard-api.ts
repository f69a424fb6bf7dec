/**
 * HTTP reads of the wall, projects and alerts views (same origin as the page), with a timeout
 * and one result shape: `ok`, `missing` (404/501: the server has no such endpoint yet) or `error`.
 * The display token from the URL, if any, is sent as a bearer token; nothing ever prompts.
 */
import type { AlertsList, HistoryResponse, ProjectsMeta, ProjectsUsage } from '@gpupulse/protocol';
import { displayToken } from './socket.ts';

export type ApiRead<T> =
  | { kind: 'ok'; data: T }
  | { kind: 'missing'; status: number }
  | { kind: 'error'; message: string; status?: number };

export const API_TIMEOUT_MS = 10_000;

export async function readJson<T>(
  path: string,
  check: (body: unknown) => body is T,
  signal?: AbortSignal,
): Promise<ApiRead<T>> {
  const timeout = AbortSignal.timeout(API_TIMEOUT_MS);
  const token = displayToken();
  try {
    const res = await fetch(path, {
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      credentials: 'same-origin',
    });
    if (res.status === 404 || res.status === 501) return { kind: 'missing', status: res.status };
    if (!res.ok) return { kind: 'error', status: res.status, message: `HTTP ${res.status}` };
    const body: unknown = await res.json();
    return check(body) ? { kind: 'ok', data: body } : { kind: 'error', message: 'unexpected response' };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export function isProjectsUsage(v: unknown): v is ProjectsUsage {
  return (
    isObject(v) &&
    typeof v.serverTime === 'number' &&
    Array.isArray(v.projects) &&
    v.projects.every(
      (p) => isObject(p) && typeof p.project === 'string' && typeof p.gpusInUse === 'number',
    ) &&
    isObject(v.cluster) &&
    typeof v.cluster.gpusTotal === 'number'
  );
}

export function isProjectsMetaBody(v: unknown): v is ProjectsMeta {
  return (
    isObject(v) &&
    Array.isArray(v.projects) &&
    v.projects.every((p) => isObject(p) && typeof p.id === 'string')
  );
}

export function isAlertsList(v: unknown): v is AlertsList {
  return (
    isObject(v) &&
    Array.isArray(v.alerts) &&
    v.alerts.every(
      (a) =>
        isObject(a) && typeof a.id === 'string' && typeof a.rule === 'string' && typeof a.node === 'string',
    )
  );
}

export function isHistoryBody(v: unknown): v is HistoryResponse {
  return (
    isObject(v) &&
    Array.isArray(v.series) &&
    v.series.every((s) => isObject(s) && typeof s.metric === 'string' && Array.isArray(s.points))
  );
}
