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
  if (frameBytes !== null && frameBytes > LIMITS.maxMessageBytes) {
    return {
      ok: false,
      code: 'TOO_LARGE',
      message: `report is ${frameBytes} bytes; the limit is ${LIMITS.maxMessageBytes}: send fewer samples per report`,
    };
  }
  const envelope = SamplesReportEnvelopeSchema.safeParse(raw);
  if (!envelope.success) return { ok: false, code: 'VALIDATION', message: describeZodError(envelope.error) };
  const accepted: Sample[] = [];
  const rejected: RejectedSample[] = [];
  const oldest = now - window.maxAgeMs;
  const newest = now + window.maxAheadMs;
  const items = envelope.data.samples;
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const parsed = SampleSchema.safeParse(item);
    if (!parsed.success) {
      const rawSeq = (item as { seq?: unknown } | null)?.seq;
      const seq = Number.isSafeInteger(rawSeq) ? (rawSeq as number) : null;
      rejected.push({ seq, index, code: 'VALIDATION', message: describeZodError(parsed.error, 3) });
      continue;
    }
    const s = parsed.data;
    if (s.ts < oldest) {
      rejected.push({
        seq: s.seq,
        index,
        code: 'TOO_OLD',
        message: `ts ${s.ts} is ${now - s.ts} ms before the server clock (${now}); samples older than ${ms(window.maxAgeMs)} are not taken`,
      });
      continue;
    }
    if (s.ts > newest) {
      rejected.push({
        seq: s.seq,
        index,
        code: 'TOO_NEW',
        message: `ts ${s.ts} is ${s.ts - now} ms ahead of the server clock (${now}); at most ${ms(window.maxAheadMs)} ahead is taken: check the node's clock (NTP)`,
      });
      continue;
    }
    accepted.push(s);
  }
  return { ok: true, accepted, rejected, replay: envelope.data.replay ?? false };
}
