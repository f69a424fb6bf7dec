/**
 * What the GPU page and My work say about nudges: the latest nudge of the subject and the snooze
 * in effect after it ("you were nudged at 14:02; snoozed until 16:02").
 */
import type { NudgeRecord, NudgesList } from '@gpupulse/protocol';

export interface NudgeSummary {
  nudge: NudgeRecord;
  /** A snooze given after that nudge, when still in effect. */
  snoozedUntil: number | null;
  /** Whether the project lead was told after that nudge. */
  escalated: boolean;
}

/** `/api/v1/nudges?node=&gpu=&user=&project=` (empty values left out). */
export function nudgesUrl(filter: { node?: string; gpu?: string; user?: string; project?: string }): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v) p.set(k, v);
  const q = p.toString();
  return `/api/v1/nudges${q ? `?${q}` : ''}`;
}

/** The latest owner nudge in the list (newest first) and what followed it. */
export function summarize(list: NudgesList, now: number): NudgeSummary | null {
  const nudge = list.nudges.find((r) => r.kind === 'nudge');
  if (!nudge) return null;
  const sameHolding = (r: { node: string; gpuUuid: string; user: string }) =>
    r.node === nudge.node && r.gpuUuid === nudge.gpuUuid && r.user === nudge.user;
  const snooze = list.nudges.find(
    (r) => r.kind === 'snooze' && sameHolding(r) && r.at >= nudge.at && (r.until ?? 0) > now,
  );
  const escalated = list.nudges.some((r) => r.kind === 'escalation' && sameHolding(r) && r.at >= nudge.at);
  return { nudge, snoozedUntil: snooze?.until ?? null, escalated };
}
