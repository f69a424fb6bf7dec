/**
 * `GET /api/v1/reports/:period` (role display, aggregated only):
 *   /api/v1/reports/2026-11?institution=kist          JSON (`Report`)
 *   /api/v1/reports/2026-11.csv?institution=kist      CSV (also `format=csv` / `Accept: text/csv`)
 *   /api/v1/reports/2026-W47.pdf?institution=&lang=ko PDF through headless Chromium (503 without it)
 *   /api/v1/reports/2026-11.html?lang=en              the printable HTML the PDF is made from
 */
import type { ServerResponse } from 'node:http';
import { parsePeriod } from '../accounting/share.ts';
import { HttpError, type Route, sendJson } from '../http/routes.ts';
import { reportCsv } from './csv.ts';
import { csvFilename } from './names.ts';
import { type PdfRenderer, PdfUnavailableError } from './pdf.ts';
import { type ReportLang, renderReportHtml } from './render.ts';
import { computeReport, type ReportDeps, ReportError } from './report.ts';

function send(
  res: ServerResponse,
  body: string | Buffer,
  type: string,
  head: boolean,
  extra: Record<string, string> = {},
) {
  res.writeHead(200, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/;

export function reportRoutes(deps: ReportDeps & { pdf: PdfRenderer }): Route[] {
  return [
    {
      path: '/api/v1/reports/:period',
      methods: ['GET'],
      role: 'display',
      handle: async ({ req, res, head, params, query }) => {
        const m = /^(.+?)(?:\.(json|csv|pdf|html))?$/.exec(params.period ?? '');
        const period = m ? parsePeriod(m[1]!) : null;
        if (!period)
          throw new HttpError(
            400,
            'VALIDATION',
            'period must be a month like 2026-11 or an ISO week like 2026-W47',
          );
        for (const k of query.keys())
          if (!['institution', 'lang', 'format'].includes(k))
            throw new HttpError(
              400,
              'VALIDATION',
              `unknown parameter "${k.slice(0, 40)}" (known: institution, lang, format)`,
            );
        const institution = query.get('institution') || null;
        if (institution !== null && !ID.test(institution))
          throw new HttpError(
            400,
            'VALIDATION',
            'institution must be an institution id of the projects file',
          );
        const langParam = query.get('lang') ?? 'en';
        if (langParam !== 'ko' && langParam !== 'en')
          throw new HttpError(400, 'VALIDATION', 'lang must be ko or en');
        const lang: ReportLang = langParam;
        const formatParam = query.get('format');
        if (formatParam !== null && !['json', 'csv', 'pdf', 'html'].includes(formatParam))
          throw new HttpError(400, 'VALIDATION', 'format must be json, csv, pdf or html');
        const acceptCsv = /\btext\/csv\b/i.test(String(req.headers.accept ?? ''));
        const format = m![2] ?? formatParam ?? (acceptCsv ? 'csv' : 'json');
        let report: Awaited<ReturnType<typeof computeReport>>;
        try {
          report = await computeReport(deps, period, institution);
        } catch (err) {
          if (err instanceof ReportError) throw new HttpError(err.status, err.code, err.message);
          throw err;
        }
        const base = csvFilename(report, '').replace(/\.$/, '');
        if (format === 'json') return sendJson(res, 200, report, head);
        if (format === 'csv')
          return send(res, reportCsv(report), 'text/csv; charset=utf-8', head, {
            'content-disposition': `attachment; filename="${base}.csv"`,
          });
        const html = renderReportHtml(report, deps.projects(), lang);
        if (format === 'html') return send(res, html, 'text/html; charset=utf-8', head);
        try {
          const pdf = await deps.pdf.render(html);
          send(res, pdf, 'application/pdf', head, {
            'content-disposition': `attachment; filename="${base}-${lang}.pdf"`,
          });
        } catch (err) {
          if (err instanceof PdfUnavailableError) throw new HttpError(503, 'UNAVAILABLE', err.message);
          throw err;
        }
      },
    },
  ];
}
