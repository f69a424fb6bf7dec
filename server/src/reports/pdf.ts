/**
 * PDF of a report through headless Chromium (`GPUPULSE_CHROMIUM`, default /usr/bin/chromium):
 * the report's HTML is written to a private temporary directory and printed from a file URL, so
 * nothing is served and no token is needed. Bounded by a timeout (default 30 s); at most
 * `maxConcurrent` (2) renders at once, the rest are refused with 503.
 */
import { spawn } from 'node:child_process';
import { access, constants, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export class PdfUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PdfUnavailableError';
  }
}

export interface PdfRenderer {
  /** Null when Chromium is there; else why not. */
  problem(): Promise<string | null>;
  render(html: string): Promise<Buffer>;
}

export function chromiumPdfRenderer(
  opts: { chromium?: string; timeoutMs?: number; maxConcurrent?: number } = {},
): PdfRenderer {
  const chromium = opts.chromium ?? '/usr/bin/chromium';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxConcurrent = opts.maxConcurrent ?? 2;
  let running = 0;
  const problem = async (): Promise<string | null> => {
    try {
      await access(chromium, constants.X_OK);
      return null;
    } catch {
      return `PDF needs headless Chromium at ${chromium} (install the chromium package or set GPUPULSE_CHROMIUM); the report is available as HTML/CSV`;
    }
  };
  return {
    problem,
    async render(html) {
      const p = await problem();
      if (p) throw new PdfUnavailableError(p);
      if (running >= maxConcurrent)
        throw new PdfUnavailableError('too many PDF renders at once; try again shortly');
      running++;
      const dir = await mkdtemp(join(tmpdir(), 'gpupulse-report-'));
      try {
        const page = join(dir, 'report.html');
        const out = join(dir, 'report.pdf');
        await writeFile(page, html, { mode: 0o600 });
        await new Promise<void>((resolve, reject) => {
          const child = spawn(
            chromium,
            [
              '--headless',
              '--no-sandbox',
              '--disable-gpu',
              '--disable-dev-shm-usage',
              '--no-first-run',
              '--no-pdf-header-footer',
              `--user-data-dir=${join(dir, 'profile')}`,
              `--print-to-pdf=${out}`,
              pathToFileURL(page).href,
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] },
          );
          let err = '';
          child.stderr.on('data', (d: Buffer) => {
            if (err.length < 4000) err += d.toString();
          });
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new PdfUnavailableError(`Chromium did not finish the PDF within ${timeoutMs} ms`));
          }, timeoutMs);
          child.on('error', (e) => {
            clearTimeout(timer);
            reject(new PdfUnavailableError(`Chromium could not start: ${e.message}`));
          });
          child.on('exit', (code) => {
            clearTimeout(timer);
            if (code === 0) resolve();
            else
              reject(
                new PdfUnavailableError(
                  `Chromium exited with ${code}: ${err.trim().split('\n').pop() ?? ''}`,
                ),
              );
          });
        });
        const pdf = await readFile(out);
        if (pdf.subarray(0, 5).toString() !== '%PDF-') throw new PdfUnavailableError('Chromium wrote no PDF');
        return pdf;
      } finally {
        running--;
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
