import type { NudgeRecord, NudgesList } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { nudgesUrl, summarize } from './nudges.ts';

const rec = (kind: NudgeRecord['kind'], at: number, extra: Partial<NudgeRecord> = {}): NudgeRecord => ({
  id: `${kind}-${at}`,
  kind,
  at,
  node: 'gpu-01',
  gpuUuid: 'GPU-1',
  gpuIndex: 3,
  user: 'kim',
  project: 'p',
  idleSince: 0,
  process: 'python',
  idleGpuHours: 1,
  until: null,
  to: kind === 'nudge' ? 'user' : null,
  email: 'sent',
  webhooks: 0,
  idleMsAfterNudge: null,
  ...extra,
});
const list = (nudges: NudgeRecord[]): NudgesList => ({
  serverTime: 0,
  email: 'configured',
  nudges,
  snoozes: [],
});

describe('nudge summary', () => {
  it('is the latest nudge with a snooze in effect after it', () => {
    const l = list([rec('snooze', 200, { until: 7400 }), rec('nudge', 100), rec('nudge', 50)]);
    expect(summarize(l, 1000)).toMatchObject({ nudge: { at: 100 }, snoozedUntil: 7400, escalated: false });
    expect(summarize(l, 8000)?.snoozedUntil).toBeNull();
  });
  it('says when the lead was told, and nothing without a nudge', () => {
    expect(summarize(list([rec('escalation', 300), rec('nudge', 100)]), 400)?.escalated).toBe(true);
    expect(summarize(list([rec('resolved', 300)]), 400)).toBeNull();
  });
  it('builds the URL from the given filters only', () => {
    expect(nudgesUrl({ node: 'a b', gpu: '', user: 'kim' })).toBe('/api/v1/nudges?node=a+b&user=kim');
    expect(nudgesUrl({})).toBe('/api/v1/nudges');
  });
});
