import type { NudgeRecord } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { summarizeNudges } from '../src/reports/nudge-summary.ts';

const base: NudgeRecord = {
  id: 'x',
  kind: 'nudge',
  at: 0,
  node: 'n1',
  gpuUuid: 'GPU-1',
  gpuIndex: 0,
  user: 'kim',
  project: 'alpha',
  idleSince: 0,
  process: 'python',
  idleGpuHours: 0.5,
  until: null,
  to: 'user',
  email: 'sent',
  webhooks: 0,
  idleMsAfterNudge: null,
};
const MIN = 60_000;

describe('nudges in a report', () => {
  it('counts nudges, snoozes and escalations; idle minutes before vs after a nudge', () => {
    const records: NudgeRecord[] = [
      { ...base, id: '1', at: 40 * MIN, idleSince: 10 * MIN }, // idle 30 min before the nudge
      { ...base, id: '2', at: 100 * MIN, idleSince: 50 * MIN, project: 'beta' }, // 50 min
      { ...base, id: '3', kind: 'snooze', to: null, email: null, until: 200 * MIN },
      { ...base, id: '4', kind: 'escalation', to: 'lead' },
      { ...base, id: '5', kind: 'resolved', to: null, email: null, idleMsAfterNudge: 6 * MIN },
      {
        ...base,
        id: '6',
        kind: 'resolved',
        to: null,
        email: null,
        idleMsAfterNudge: 2 * MIN,
        project: 'beta',
      },
      { ...base, id: '7', kind: 'ops', to: 'ops', email: null },
    ];
    expect(summarizeNudges(records, null)).toEqual({
      available: true,
      sent: 2,
      snoozed: 1,
      escalated: 1,
      idleMinutesBefore: 40,
      idleMinutesAfter: 4,
    });
    // An institution's report counts its projects only.
    expect(summarizeNudges(records, ['beta'])).toEqual({
      available: true,
      sent: 1,
      snoozed: 0,
      escalated: 0,
      idleMinutesBefore: 50,
      idleMinutesAfter: 2,
    });
    expect(JSON.stringify(summarizeNudges(records, null))).not.toContain('kim');
  });
});
