/**
 * Scheduled delivery: from the 1st of each month (server time zone) the last month's report goes
 * by e-mail to each institution's `reportTo` addresses (projects file), in its `reportLanguage`
 * (default ko): the PDF attached when Chromium is there, else the CSV and a link.
 *
 * Exactly once, across restarts and processes: only the holder of the singleton lease works, and
 * each (period, institution) is claimed by creating `<dataDir>/reports/<period>/<institution>.json`
 * with O_EXCL before sending; the claim records `sending`, then `sent` (kept for good) or
 * `failed` (tried again after `retryAfterMs`). A claim left `sending` by a process that died
 * mid-send is taken over after `staleAfterMs` (default 30 min). Processes sharing the data
 * directory (or the Redis lease of issue 10) never send twice.
 */
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { periodAt, previousPeriod } from '../accounting/share.ts';
import { reportCsv } from './csv.ts';
import { csvFilename } from './names.ts';
import type { PdfRenderer } from './pdf.ts';
import { type ReportLang, renderReportHtml, reportTitle, scopeName } from './render.ts';
import { computeReport, type ReportDeps } from './report.ts';

/** What delivery needs of a mailer (the server's SMTP mailer, server/src/mail/, fits it). */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; content: Buffer | string; contentType?: string }>;
}
/** `sent`; anything else (`failed`, `dropped`, `not-configured`) is tried again later. */
export type MailResult = string;
export interface ReportMailer {
  send(message: MailMessage): Promise<MailResult>;
}

export interface ReportLease {
  held(): boolean;
}

/** In-process lease: this process always holds it (one server). */
export const inProcessLease: ReportLease = { held: () => true };

export interface DeliveryOptions {
  reports: ReportDeps;
  pdf: PdfRenderer;
  send(message: MailMessage): Promise<MailResult>;
  dataDir: string;
  lease: ReportLease;
  logger: Logger;
  /** Base URL for the report link (GPUPULSE_PUBLIC_URL); null: no link. */
  publicUrl: string | null;
  retryAfterMs?: number;
  staleAfterMs?: number;
}

interface Claim {
  state: 'sending' | 'sent' | 'failed';
  at: number;
  pid: number;
  to: string[];
  attachment?: 'pdf' | 'csv';
  error?: string;
}

export interface DeliveryStats {
  sent: number;
  failed: number;
  skipped: number;
}

export class ReportDelivery {
  readonly stats: DeliveryStats = { sent: 0, failed: 0, skipped: 0 };
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: DeliveryOptions) {}

  /** Checks every `intervalMs` (default 5 min) whether last month's reports are due. */
  start(intervalMs = 5 * 60_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check (tests call it with an injected clock). */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.run()
      .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, 'report delivery failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private claimPath(period: string, institution: string): string {
    return join(this.o.dataDir, 'reports', period, `${institution}.json`);
  }

  /** Takes the claim for (period, institution); false when another holds it or it is done. */
  private async claim(period: string, institution: string, to: string[], now: number): Promise<boolean> {
    const path = this.claimPath(period, institution);
    await mkdir(join(this.o.dataDir, 'reports', period), { recursive: true });
    const mine: Claim = { state: 'sending', at: now, pid: process.pid, to };
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(mine));
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let old: Claim;
    try {
      old = JSON.parse(await readFile(path, 'utf8')) as Claim;
    } catch {
      return false; // being written right now by another process
    }
    const retry =
      (old.state === 'failed' && now - old.at >= (this.o.retryAfterMs ?? 3_600_000)) ||
      (old.state === 'sending' && now - old.at >= (this.o.staleAfterMs ?? 30 * 60_000));
    if (!retry) return false;
    // Take over through an exclusive side file, so two processes cannot both retry.
    const lock = `${path}.retry-${old.at}`;
    try {
      const fh = await open(lock, 'wx', 0o600);
      await fh.close();
    } catch {
      return false;
    }
    await this.write(path, mine);
    return true;
  }

  private async write(path: string, claim: Claim): Promise<void> {
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(claim), { mode: 0o600 });
    await rename(tmp, path);
  }

  /** What was recorded for (period, institution), or null. */
  async record(period: string, institution: string): Promise<Claim | null> {
    try {
      return JSON.parse(await readFile(this.claimPath(period, institution), 'utf8')) as Claim;
    } catch {
      return null;
    }
  }

  private async run(): Promise<void> {
    if (!this.o.lease.held()) return;
    const now = this.o.reports.now();
    const period = previousPeriod(periodAt(now, 'month'));
    const config = this.o.reports.projects();
    for (const [institution, dest] of config.accounting.reportTo) {
      if (dest.to.length === 0) continue;
      if (!this.o.lease.held()) return;
      if (!(await this.claim(period.label, institution, dest.to, now))) {
        this.stats.skipped++;
        continue;
      }
      const path = this.claimPath(period.label, institution);
      const lang: ReportLang = dest.language ?? 'ko';
      try {
        const report = await computeReport(this.o.reports, period, institution);
        const html = renderReportHtml(report, config, lang);
        const scope = scopeName(report, config, lang);
        const subject = `[gpupulse] ${reportTitle(lang)} ${report.period} · ${scope}`;
        const link = this.o.publicUrl
          ? `${this.o.publicUrl}/reports/${report.period}?institution=${encodeURIComponent(institution)}&lang=${lang}`
          : null;
        let attachment: MailMessage['attachments'];
        let kind: 'pdf' | 'csv';
        try {
          const pdf = await this.o.pdf.render(html);
          attachment = [
            { filename: csvFilename(report, 'pdf'), content: pdf, contentType: 'application/pdf' },
          ];
          kind = 'pdf';
        } catch (err) {
          this.o.logger.info({ err: (err as Error).message }, 'report e-mail without PDF: CSV attached');
          attachment = [
            { filename: csvFilename(report, 'csv'), content: reportCsv(report), contentType: 'text/csv' },
          ];
          kind = 'csv';
        }
        const intro =
          lang === 'ko'
            ? `${scope}의 ${report.period} GPU 사용 보고서입니다.`
            : `The ${report.period} GPU usage report of ${scope}.`;
        const text = [
          intro,
          `${lang === 'ko' ? '사용' : 'Busy'} ${report.totals.busyGpuHours} GPU-h, ${lang === 'ko' ? '유휴 점유' : 'idle-held'} ${report.totals.idleHeldGpuHours} GPU-h, ${report.totals.energyKWh} kWh, ${report.totals.co2eKg} kg CO2e.`,
          link ? `${link}` : '',
        ]
          .filter(Boolean)
          .join('\n\n');
        const result = await this.o.send({
          to: dest.to.join(', '),
          subject,
          text,
          html,
          headers: { 'Content-Language': lang },
          attachments: attachment,
        });
        if (result === 'sent') {
          await this.write(path, { state: 'sent', at: now, pid: process.pid, to: dest.to, attachment: kind });
          this.stats.sent++;
          this.o.logger.info(
            { period: report.period, institution, to: dest.to.length, attachment: kind },
            'report e-mailed',
          );
        } else {
          await this.write(path, { state: 'failed', at: now, pid: process.pid, to: dest.to, error: result });
          this.stats.failed++;
          this.o.logger.warn({ period: report.period, institution, result }, 'report e-mail not sent');
        }
      } catch (err) {
        await this.write(path, {
          state: 'failed',
          at: now,
          pid: process.pid,
          to: dest.to,
          error: (err as Error).message,
        });
        this.stats.failed++;
        throw err;
      }
    }
  }
}
