import { randomBytes } from 'node:crypto';
import type { Alert, GpuMetrics } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock.ts';
import type { GpuState } from '../src/fleet/fleet-state.ts';
import type { Mailer, MailMessage, MailResult } from '../src/mail/mailer.ts';
import { NudgeEngine } from '../src/nudges/engine.ts';
import { SnoozeLinks } from '../src/nudges/links.ts';
import { ProjectsFileError, parseProjectsFile } from '../src/projects/projects-file.ts';

const MIN = 60_000;
const HOUR = 3_600_000;

class Outbox implements Mailer {
  configured = true;
  readonly sent: MailMessage[] = [];
  describe() {
    return 'smtp://outbox:25';
  }
  async send(m: MailMessage): Promise<MailResult> {
    this.sent.push(m);
    return 'sent';
  }
  async close() {}
}

const FILE = `
users:
  kim.minji: { email: minji@hanbit.example, language: ko, slack: U012AB3CD }
  lee.jihoon: { language: en }
mail: { template: "{user}@example.ac.kr", defaultLanguage: en }
nudge:
  after: 30m
  snooze: 2h
  escalateAfter: 2h
  opsAfter: 4h
  quietHours: "22:00-08:00"
  timeZone: Asia/Seoul
  dailyCapPerUser: 2
  linkValidFor: 1h
projects:
  - id: fu-video
    name: { en: Video, ko: 영상 }
    lead: prof.kim
  - id: quiet-lab
    nudge: false
`;

function gpu(node: string, index: number, idleSince: number | null, user: string, project: string): GpuState {
  const uuid = `GPU-${node}-${index}`;
  return {
    node,
    status: 'online',
    gpu: { uuid, index, state: 'ok', utilizationGpuPercent: 1 } as unknown as GpuMetrics,
    shares: [
      {
        process: {
          gpuUuid: uuid,
          pid: 100 + index,
          usedMemoryMiB: 1000,
          name: 'python3',
          cmdline: 'python3 secret --token x',
        },
        project,
        rule: 'env',
        share: 1,
        weight: 1,
        user,
        job: null,
      },
    ],
    idleSince,
    idleHeld: idleSince !== null,
  };
}

/** 10:00 in Seoul (01:00 UTC) on a fixed day. */
const T0 = Date.UTC(2026, 2, 3, 1, 0, 0);

function setup(file = FILE, t0 = T0) {
  const clock = new ManualClock(t0);
  const config = parseProjectsFile(file, 'projects.yaml');
  let gpus: GpuState[] = [];
  const outbox = new Outbox();
  const ops: Alert[] = [];
  const stored: Parameters<NudgeEngine['restore']>[0][number][] = [];
  const links = SnoozeLinks.withKeyForTests(randomBytes(32));
  const engine = new NudgeEngine({
    clock,
    projects: () => config,
    gpus: (fn) => gpus.forEach(fn),
    mailer: outbox,
    ops: (a) => {
      ops.push(a);
      return 1;
    },
    links,
    baseUrl: () => 'https://gpupulse.example.org',
    record: (r) => stored.push(r),
    projectShare: (p) =>
      p === 'fu-video' ? { agreedGpuHours: 100, usedGpuHours: 40, usedPercent: 40 } : null,
  });
  const flush = () => new Promise((r) => setImmediate(r));
  return {
    clock,
    engine,
    outbox,
    ops,
    links,
    stored,
    flush,
    setGpus: (g: GpuState[]) => {
      gpus = g;
    },
    step: async (ms: number) => {
      clock.advance(ms);
      engine.tick();
      await flush();
    },
  };
}

const tokenOf = (text: string) => /\/nudge\/snooze\?t=([A-Za-z0-9_.-]+)/.exec(text)?.[1] ?? null;

describe('nudge engine (injected clock)', () => {
  it('tells the owner after nudge.after, the lead after escalateAfter, ops after opsAfter', async () => {
    const s = setup();
    s.setGpus([gpu('gpu-01', 3, T0, 'lee.jihoon', 'fu-video')]);
    await s.step(29 * MIN);
    expect(s.outbox.sent).toHaveLength(0);
    await s.step(1 * MIN);
    expect(s.outbox.sent).toHaveLength(1);
    const m = s.outbox.sent[0]!;
    expect(m.to).toBe('lee.jihoon@example.ac.kr');
    expect(m.subject).toContain('gpu-01 / GPU 3');
    expect(m.text).toContain('python3');
    expect(m.text).not.toContain('secret');
    expect(m.text).toContain('https://gpupulse.example.org/me?user=lee.jihoon');
    expect(tokenOf(m.text)).not.toBeNull();
    expect(m.text).toContain('Held idle so far: 0.50 GPU-hours');
    // What it costs the project's fair share: 0.5 of 100 agreed GPU-hours.
    expect(m.text).toContain("That is 0.5 % of the project's 100 agreed GPU-hours this month");
    const list = s.engine.list({ user: 'lee.jihoon' });
    expect(list.nudges.map((r) => [r.kind, r.to, r.email])).toEqual([['nudge', 'user', 'sent']]);

    await s.step(2 * HOUR - MIN);
    expect(s.outbox.sent).toHaveLength(1);
    await s.step(MIN);
    expect(s.outbox.sent).toHaveLength(2);
    expect(s.outbox.sent[1]!.to).toBe('prof.kim@example.ac.kr');
    expect(s.outbox.sent[1]!.text).toContain('lee.jihoon was told at');
    expect(tokenOf(s.outbox.sent[1]!.text)).toBeNull();
    expect(s.ops).toHaveLength(0);
    await s.step(2 * HOUR);
    expect(s.ops).toHaveLength(1);
    expect(s.ops[0]).toMatchObject({
      rule: 'gpu_idle_held_nudge',
      node: 'gpu-01',
      gpuIndex: 3,
      project: 'fu-video',
    });
    expect(s.engine.list().nudges.map((r) => r.kind)).toEqual(['ops', 'escalation', 'nudge']);
    // Nothing more while it stays idle; a resolution when it stops.
    await s.step(HOUR);
    expect(s.outbox.sent).toHaveLength(2);
    s.setGpus([]);
    await s.step(1000);
    const resolved = s.engine.list().nudges[0]!;
    expect(resolved.kind).toBe('resolved');
    expect(resolved.idleMsAfterNudge).toBe(5 * HOUR + 1000);
  });

  it('without SMTP: records the nudge with e-mail "not configured" (and no address: "no-address")', async () => {
    const s = setup(
      FILE.replace('mail: { template: "{user}@example.ac.kr", defaultLanguage: en }\n', '').replace(
        'lead: prof.kim',
        'lead: lead@example.ac.kr',
      ),
    );
    (s.outbox as { configured: boolean }).configured = false;
    s.setGpus([gpu('gpu-01', 0, T0, 'kim.minji', 'fu-video'), gpu('gpu-01', 1, T0, 'nobody', 'fu-video')]);
    await s.step(30 * MIN);
    expect(s.outbox.sent).toEqual([]);
    const byUser = Object.fromEntries(s.engine.list().nudges.map((r) => [r.user, r.email]));
    expect(byUser).toEqual({ 'kim.minji': 'not-configured', nobody: 'no-address' });
    expect(s.engine.list().email).toBe('not-configured');
  });

  it('writes to a ko user in Korean and to the address in users:', async () => {
    const s = setup();
    s.setGpus([gpu('gpu-02', 0, T0, 'kim.minji', 'fu-video')]);
    await s.step(30 * MIN);
    const m = s.outbox.sent[0]!;
    expect(m.to).toBe('minji@hanbit.example');
    expect(m.subject).toContain('사용하지 않고');
    expect(m.text).toContain('아직 사용 중입니다');
    expect(m.headers?.['Content-Language']).toBe('ko');
  });

  it('defers in quiet hours (Asia/Seoul) and sends when they end', async () => {
    const t = Date.UTC(2026, 2, 3, 13, 0, 0); // 22:00 in Seoul
    const s = setup(FILE, t);
    s.setGpus([gpu('gpu-01', 1, t, 'lee.jihoon', 'fu-video')]);
    await s.step(HOUR);
    expect(s.outbox.sent).toHaveLength(0);
    await s.step(8 * HOUR); // 07:00
    expect(s.outbox.sent).toHaveLength(0);
    expect(s.ops).toHaveLength(1); // ops are not held back by quiet hours
    await s.step(HOUR); // 08:00
    expect(s.outbox.sent.map((m) => m.to)).toEqual(['lee.jihoon@example.ac.kr', 'prof.kim@example.ac.kr']);
  });

  it('caps nudges per user and day, and leaves nudge:false projects alone', async () => {
    const s = setup();
    s.setGpus([
      gpu('gpu-01', 0, T0, 'lee.jihoon', 'fu-video'),
      gpu('gpu-01', 1, T0, 'lee.jihoon', 'fu-video'),
      gpu('gpu-01', 2, T0, 'lee.jihoon', 'fu-video'),
      gpu('gpu-01', 3, T0, 'kim.minji', 'quiet-lab'),
    ]);
    await s.step(31 * MIN);
    expect(s.outbox.sent.map((m) => m.to)).toEqual(['lee.jihoon@example.ac.kr', 'lee.jihoon@example.ac.kr']);
    expect(s.engine.list({ user: 'kim.minji' }).nudges).toEqual([]);
  });

  it('"I\'m still using it": snoozes once, then the link is used; escalation waits for the snooze', async () => {
    const s = setup();
    s.setGpus([gpu('gpu-01', 3, T0, 'lee.jihoon', 'fu-video')]);
    await s.step(30 * MIN);
    const token = tokenOf(s.outbox.sent[0]!.text)!;
    expect(s.engine.checkLink(token)).toMatchObject({
      state: 'ok',
      user: 'lee.jihoon',
      node: 'gpu-01',
      gpuIndex: 3,
    });
    await s.step(10 * MIN);
    const out = s.engine.snooze(token);
    expect(out.ok).toBe(true);
    const until = T0 + 40 * MIN + 2 * HOUR;
    expect(out.ok && out.record.until).toBe(until);
    expect(s.engine.snooze(token)).toEqual({ ok: false, reason: 'used', user: 'lee.jihoon' });
    expect(s.engine.checkLink(token).state).toBe('used');
    expect(s.engine.list().snoozes).toEqual([
      { node: 'gpu-01', gpuUuid: 'GPU-gpu-01-3', user: 'lee.jihoon', until },
    ]);
    // The lead would have been told at +2h30: not while snoozed.
    await s.step(2 * HOUR - MIN);
    expect(s.outbox.sent).toHaveLength(1);
    // Snooze over, still idle: a new nudge, the schedule starts again.
    await s.step(MIN);
    expect(s.outbox.sent).toHaveLength(2);
    expect(s.outbox.sent[1]!.to).toBe('lee.jihoon@example.ac.kr');
    expect(s.engine.list().snoozes).toEqual([]);
  });

  it('refuses an expired link and a changed one', async () => {
    const s = setup();
    s.setGpus([gpu('gpu-01', 3, T0, 'lee.jihoon', 'fu-video')]);
    await s.step(30 * MIN);
    const token = tokenOf(s.outbox.sent[0]!.text)!;
    const changed = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(s.engine.snooze(changed)).toMatchObject({ ok: false, reason: 'invalid' });
    expect(s.engine.snooze('nonsense')).toMatchObject({ ok: false, reason: 'invalid' });
    await s.step(HOUR); // linkValidFor: 1h
    expect(s.engine.snooze(token)).toMatchObject({ ok: false, reason: 'expired', user: 'lee.jihoon' });
    expect(s.engine.list().nudges.filter((r) => r.kind === 'snooze')).toEqual([]);
  });

  it('after a restart: a used link stays used, the nudge is not sent twice, the cap counts', async () => {
    const a = setup();
    a.setGpus([
      gpu('gpu-01', 3, T0, 'lee.jihoon', 'fu-video'),
      gpu('gpu-01', 4, T0, 'lee.jihoon', 'fu-video'),
    ]);
    await a.step(30 * MIN);
    const token = tokenOf(a.outbox.sent[0]!.text)!;
    expect(a.engine.snooze(token).ok).toBe(true);
    await a.flush();
    const stored = a.stored;
    expect(stored.map((r) => r.kind)).toEqual(['nudge', 'nudge', 'snooze']);
    // A new engine with the same key and clock, records read back; the fleet's idle clock restarted.
    const b = setup();
    (b.engine as unknown as { opts: { links: SnoozeLinks } }).opts.links = a.links;
    b.clock.set(a.clock.now());
    b.engine.restore(stored);
    expect(b.engine.snooze(token)).toMatchObject({ ok: false, reason: 'used' });
    b.setGpus([
      gpu('gpu-01', 3, b.clock.now(), 'lee.jihoon', 'fu-video'),
      gpu('gpu-01', 4, b.clock.now(), 'lee.jihoon', 'fu-video'),
    ]);
    await b.step(40 * MIN);
    expect(b.outbox.sent).toEqual([]);
    expect(b.engine.list().snoozes).toHaveLength(1);
  });
});

describe('projects file: users, mail, nudge', () => {
  const err = (text: string) => {
    try {
      parseProjectsFile(text, 'p.yaml');
    } catch (e) {
      if (e instanceof ProjectsFileError) return e.message;
    }
    return null;
  };
  it('reads durations, quiet hours and defaults', () => {
    const c = parseProjectsFile(FILE, 'p.yaml');
    expect(c.nudge).toMatchObject({
      afterMs: 30 * MIN,
      snoozeMs: 2 * HOUR,
      quietHours: { startMin: 1320, endMin: 480 },
      dailyCapPerUser: 2,
    });
    expect(c.projects.get('quiet-lab')?.nudge).toBe(false);
    expect(parseProjectsFile('projects: []', 'p.yaml').nudge).toMatchObject({
      afterMs: 30 * MIN,
      timeZone: 'Asia/Seoul',
    });
  });
  it('names the line of a bad value', () => {
    expect(err('nudge:\n  after: soon\n')).toBe(
      'p.yaml:2: nudge.after: must be a duration like 30m, 2h, 45s or 500ms',
    );
    expect(err('nudge:\n  quietHours: "25:00-08:00"\n')).toMatch(
      /^p\.yaml:2: nudge\.quietHours: must be like "22:00-08:00"/,
    );
    expect(err('nudge:\n  timeZone: Mars/Olympus\n')).toMatch(
      /^p\.yaml:2: nudge\.timeZone: is not a known IANA time zone/,
    );
    expect(err('users:\n  kim:\n    language: fr\n')).toBe('p.yaml:3: users.kim.language: must be ko or en');
    expect(err('projects:\n  - id: a\n    lead: nobody\n')).toMatch(
      /^p\.yaml:3: projects\[0\]\.lead: "nobody" has no e-mail address/,
    );
    expect(err('mail:\n  template: "@x"\n')).toMatch(/^p\.yaml:2: mail\.template: must contain \{user\}/);
    expect(err('nudge:\n  escalateAfter: 3h\n  opsAfter: 1h\n')).toMatch(
      /^p\.yaml:3: nudge\.opsAfter: must not be shorter/,
    );
  });
});
