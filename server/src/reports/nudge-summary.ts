/**
 * Nudges of a report period and their effect, read from the nudge records the server stores
 * (measurement `gpupulse_nudge`, one JSON record per point; server/README.md "Nudges"):
 * nudges sent to owners, snoozes, escalations to leads; the effect as the mean idle minutes
 * before a nudge (from `idleSince` to the nudge) vs after it (`resolved` records'
 * `idleMsAfterNudge`). Aggregated only: no user names leave this module.
 */
import type { NudgeRecord, ReportNudges } from '@gpupulse/protocol';
import { quoteIdent } from '../storage/influx-store.ts';
import type { MetricStore } from '../storage/metric-store.ts';

export const NUDGE_MEASUREMENT = 'gpupulse_nudge';

export function summarizeNudges(
  records: readonly NudgeRecord[],
  projects: readonly string[] | null,
): ReportNudges {
  const inScope = (r: NudgeRecord) =>
    projects === null || (r.project !== null && projects.includes(r.project));
  let sent = 0;
  let snoozed = 0;
  let escalated = 0;
  let beforeSum = 0;
  let afterSum = 0;
  let afterN = 0;
  for (const r of records) {
    if (!inScope(r)) continue;
    if (r.kind === 'nudge' && r.to === 'user') {
      sent++;
      beforeSum += Math.max(0, r.at - r.idleSince) / 60_000;
    } else if (r.kind === 'snooze') snoozed++;
    else if (r.kind === 'escalation') escalated++;
    else if (r.kind === 'resolved' && r.idleMsAfterNudge !== null) {
      afterSum += r.idleMsAfterNudge / 60_000;
      afterN++;
    }
  }
  const r1 = (v: number) => Math.round(v * 10) / 10;
  return {
    available: true,
    sent,
    snoozed,
    escalated,
    idleMinutesBefore: sent > 0 ? r1(beforeSum / sent) : null,
    idleMinutesAfter: afterN > 0 ? r1(afterSum / afterN) : null,
  };
}

/** Reads the records of [from, to) from storage; null when none were ever stored (no nudge data). */
export function nudgeReader(store: MetricStore, rp: string | undefined) {
  return async (
    from: number,
    to: number,
    projects: readonly string[] | null,
  ): Promise<ReportNudges | null> => {
    const source =
      rp && store.kind !== 'memory'
        ? `${quoteIdent(rp)}.${quoteIdent(NUDGE_MEASUREMENT)}`
        : quoteIdent(NUDGE_MEASUREMENT);
    const result = await store.query(
      `SELECT "record" FROM ${source} WHERE time >= ${Math.floor(from)}ms AND time < ${Math.floor(to)}ms`,
    );
    const records: NudgeRecord[] = [];
    for (const series of result.series) {
      const col = series.columns.indexOf('record');
      for (const row of series.values) {
        try {
          records.push(JSON.parse(String(row[col])) as NudgeRecord);
        } catch {
          // a damaged row is skipped
        }
      }
    }
    return records.length === 0 ? null : summarizeNudges(records, projects);
  };
}
