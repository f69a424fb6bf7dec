/**
 * HTTP routes of projects, history and usage:
 *   GET /api/v1/projects        live usage per project + cluster totals (`ProjectsUsage`)
 *   GET /api/v1/projects/meta   who the projects are (`ProjectsMeta`, with `configError`)
 *   GET /api/v1/history         `HistoryResponse`
 *   GET /api/v1/usage           `UsageResponse`, or CSV (`Accept: text/csv` or `format=csv`)
 * A route table, so app.ts only asks "is this one of yours?".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProjectsMeta, ProjectsUsage } from '@gpupulse/protocol';
import type { Logger } from 'pino';
import {
  ApiError,
  type HistoryDeps,
  parseUsageParams,
  queryHistory,
  queryUsage,
  usageCsv,
} from '../history/history-api.ts';
import { StoreQueryError } from '../storage/metric-store.ts';

export interface ProjectsApiDeps {
  usage(): ProjectsUsage;
  meta(): ProjectsMeta;
  history: HistoryDeps;
  logger?: Logger;
}

type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: URLSearchParams,
  head: boolean,
) => Promise<void>;

function send(
  res: ServerResponse,
  status: number,
  body: string,
  type: string,
  head: boolean,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}

const sendJson = (res: ServerResponse, status: number, body: unknown, head: boolean) =>
  send(res, status, JSON.stringify(body), 'application/json; charset=utf-8', head);

/** Returns a handler that answers the routes above and resolves false for any other path. */
export function createProjectsApi(
  deps: ProjectsApiDeps,
): (
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  params: URLSearchParams,
) => Promise<boolean> {
  const log = deps.logger;
  const routes: Record<string, Handler> = {
    '/api/v1/projects': async (_req, res, _p, head) => sendJson(res, 200, deps.usage(), head),
    '/api/v1/projects/meta': async (_req, res, _p, head) => sendJson(res, 200, deps.meta(), head),
    '/api/v1/history': async (_req, res, params, head) =>
      sendJson(res, 200, await queryHistory(deps.history, params), head),
    '/api/v1/usage': async (req, res, params, head) => {
      const acceptCsv = /\btext\/csv\b/i.test(String(req.headers.accept ?? ''));
      const q = parseUsageParams(params, deps.history.now(), acceptCsv);
      const usage = await queryUsage(deps.history, q);
      if (q.format === 'csv') {
        send(res, 200, usageCsv(usage), 'text/csv; charset=utf-8', head, {
          'content-disposition': `attachment; filename="gpupulse-usage-${q.groupBy}-${q.period}.csv"`,
        });
      } else sendJson(res, 200, usage, head);
    },
  };
  return async (req, res, pathname, params) => {
    const route = routes[pathname];
    if (!route) return false;
    const head = req.method === 'HEAD';
    try {
      await route(req, res, params, head);
    } catch (err) {
      if (err instanceof ApiError) {
        sendJson(res, err.status, { error: { code: err.code, message: err.message } }, head);
      } else if (err instanceof StoreQueryError) {
        log?.error({ err: err.message, url: req.url }, 'storage query failed');
        sendJson(
          res,
          503,
          { error: { code: 'UNAVAILABLE', message: 'the storage query failed; see the server log' } },
          head,
        );
      } else throw err;
    }
    return true;
  };
}
