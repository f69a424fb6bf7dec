/**
 * Ingest stage 1: validation of a `samples:report`. The envelope first, then the frame size,
 * then every sample on its own (`SampleSchema`: shapes and value bounds) and its `ts` against
 * the server clock — so one bad sample never sinks the valid ones beside it.
 */
import {
  describeZodError,
  LIMITS,
  type RejectedSample,
  type Sample,
  SampleSchema,
  SamplesReportEnvelopeSchema,
} from '@gpupulse/protocol';

/** How far a sample's `ts` may be from the server clock. */
export interface SampleWindow {
  /** Older than this: `TOO_OLD` (default 24 h, the agent's spool age bound). */
  maxAgeMs: number;
  /** Further ahead than this: `TOO_NEW` (default 5 min). */
  maxAheadMs: number;
}

export const DEFAULT_SAMPLE_WINDOW: SampleWindow = { maxAgeMs: 24 * 3600_000, maxAheadMs: 5 * 60_000 };

/** A report that can be taken (possibly partly): the valid samples and the refused ones. */
export interface CheckedReport {
  ok: true;
  accepted: Sample[];
  rejected: RejectedSample[];
  replay: boolean;
}

/** A report refused as a whole: `VALIDATION` (not a report at all) or `TOO_LARGE`. */
export interface RefusedReport {
  ok: false;
  code: 'VALIDATION' | 'TOO_LARGE';
  message: string;
}

const ms = (n: number) =>
  n % 3600_000 === 0 ? `${n / 3600_000} h` : n % 60_000 === 0 ? `${n / 60_000} min` : `${n} ms`;

/**
 * Checks one report. `frameBytes`: the size of the frame it came in (null: unknown, not checked).
 * Accepted samples are the parsed ones (defaults applied), in the order sent.
 */
export function checkReport(
  raw: unknown,
  frameBytes: number | null,
  now: number,
  window: SampleWindow = DEFAULT_SAMPLE_WINDOW,
): CheckedReport | RefusedReport {
  const check = startCheck(raw, frameBytes, now, window);
  return check instanceof ReportCheck ? check.step(Number.POSITIVE_INFINITY)! : check;
}

/**
 * Starts checking a report: the frame size and the envelope now (cheap), the samples by `step`.
 * A report refused as a whole is answered at once.
 */
export function startCheck(
  raw: unknown,
  frameBytes: number | null,
  now: number,
  window: SampleWindow = DEFAULT_SAMPLE_WINDOW,
): ReportCheck | RefusedReport {
  if (frameBytes !== null && frameBytes > LIMITS.maxMessageBytes) {
    return {
      ok: false,
      code: 'TOO_LARGE',
      message: `report is ${frameBytes} bytes; the limit is ${LIMITS.maxMessageBytes}: send fewer samples per report`,
    };
  }
  const envelope = SamplesReportEnvelopeSchema.safeParse(raw);
  if (!envelope.success) return { ok: false, code: 'VALIDATION', message: describeZodError(envelope.error) };
  return new ReportCheck(envelope.data.samples, envelope.data.replay ?? false, now, window);
}

/**
 * The samples of a report, checked a few at a time: `step(budgetMs)` checks until it is done or
 * the budget is spent, so the caller can let other work (HTTP, acks, storage writes) run between
 * the steps of a 500-sample replay batch instead of holding the event loop for all of it.
 */
export class ReportCheck {
  private index = 0;
  private readonly accepted: Sample[] = [];
  private readonly rejected: RejectedSample[] = [];
  private readonly oldest: number;
  private readonly newest: number;

  constructor(
    private readonly items: readonly unknown[],
    private readonly replay: boolean,
    private readonly now: number,
    private readonly window: SampleWindow,
  ) {
    this.oldest = now - window.maxAgeMs;
    this.newest = now + window.maxAheadMs;
  }

  /** Samples in the report (each goes through the schema once). */
  get size(): number {
    return this.items.length;
  }

  /** Samples checked so far. */
  get checked(): number {
    return this.index;
  }

  /** Checks samples for up to `budgetMs` (at least one); the result once all are checked, else null. */
  step(budgetMs: number): CheckedReport | null {
    const { items, now, window } = this;
    const until = performance.now() + budgetMs;
    while (this.index < items.length) {
      const index = this.index++;
      this.checkOne(items[index], index, now, window);
      if (this.index < items.length && performance.now() >= until) return null;
    }
    return { ok: true, accepted: this.accepted, rejected: this.rejected, replay: this.replay };
  }

  private checkOne(item: unknown, index: number, now: number, window: SampleWindow): void {
    const parsed = SampleSchema.safeParse(item);
    if (!parsed.success) {
      const rawSeq = (item as { seq?: unknown } | null)?.seq;
      const seq = Number.isSafeInteger(rawSeq) ? (rawSeq as number) : null;
      this.rejected.push({ seq, index, code: 'VALIDATION', message: describeZodError(parsed.error, 3) });
      return;
    }
    const s = parsed.data;
    if (s.ts < this.oldest) {
      this.rejected.push({
        seq: s.seq,
        index,
        code: 'TOO_OLD',
        message: `ts ${s.ts} is ${now - s.ts} ms before the server clock (${now}); samples older than ${ms(window.maxAgeMs)} are not taken`,
      });
      return;
    }
    if (s.ts > this.newest) {
      this.rejected.push({
        seq: s.seq,
        index,
        code: 'TOO_NEW',
        message: `ts ${s.ts} is ${s.ts - now} ms ahead of the server clock (${now}); at most ${ms(window.maxAheadMs)} ahead is taken: check the node's clock (NTP)`,
      });
      return;
    }
    this.accepted.push(s);
  }
}
