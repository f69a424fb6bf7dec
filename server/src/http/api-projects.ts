/**
 * HTTP routes of projects, history and usage (entries of the route table, see routes.ts):
 *   GET /api/v1/projects        live usage per project + cluster totals (`ProjectsUsage`)
 *   GET /api/v1/projects/meta   who the projects are (`ProjectsMeta`, with `configError`)
 *   GET /api/v1/history         `HistoryResponse`
 *   GET /api/v1/usage           `UsageResponse`, or CSV (`Accept: text/csv` or `format=csv`);
 *                               `groupBy=user` needs the viewer role
 */
import type { ServerResponse } from 'node:http';
import type { ProjectsMeta, ProjectsUsage, UsageResponse } from '@gpupulse/protocol';
import { redactProjectsUsage } from '../access/redact.ts';
import { roleAtLeast } from '../access/roles.ts';
import {
  type HistoryDeps,
  parseUsageParams,
  queryHistory,
  queryUsage,
  usageCsv,
} from '../history/history-api.ts';
import { HttpError, type Route, sendJson } from './routes.ts';

export interface ProjectsApiDeps {
  usage(): ProjectsUsage;
  meta(): ProjectsMeta;
  history: HistoryDeps;
  /** Adds CO2e and fair share to usage rows (reports/usage-enrich.ts). */
  enrichUsage?: (u: UsageResponse) => UsageResponse;
}

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

export function projectsRoutes(deps: ProjectsApiDeps): Route[] {
  return [
    {
      path: '/api/v1/projects',
      methods: ['GET'],
      role: 'display',
      handle: ({ res, head, principal }) =>
        sendJson(res, 200, redactProjectsUsage(deps.usage(), principal.role), head),
    },
    {
      path: '/api/v1/projects/meta',
      methods: ['GET'],
      role: 'display',
      handle: ({ res, head }) => sendJson(res, 200, deps.meta(), head),
    },
    {
      path: '/api/v1/history',
      methods: ['GET'],
      role: 'display',
      handle: async ({ res, head, query }) =>
        sendJson(res, 200, await queryHistory(deps.history, query), head),
    },
    {
      path: '/api/v1/usage',
      methods: ['GET'],
      role: 'display',
      handle: async ({ req, res, head, query, principal }) => {
        const acceptCsv = /\btext\/csv\b/i.test(String(req.headers.accept ?? ''));
        const q = parseUsageParams(query, deps.history.now(), acceptCsv);
        if (q.groupBy === 'user' && !roleAtLeast(principal.role, 'viewer')) {
          throw new HttpError(403, 'FORBIDDEN', 'usage by user needs the viewer role');
        }
        const raw = await queryUsage(deps.history, q);
        const usage = deps.enrichUsage ? deps.enrichUsage(raw) : raw;
        if (q.format === 'csv') {
          send(res, 200, usageCsv(usage), 'text/csv; charset=utf-8', head, {
            'content-disposition': `attachment; filename="gpupulse-usage-${q.groupBy}-${q.period}.csv"`,
          });
        } else sendJson(res, 200, usage, head);
      },
    },
  ];
}
