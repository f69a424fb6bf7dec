import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NudgesList } from '@gpupulse/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './support/browser.ts';
import { repoRoot } from './support/paths.ts';
import { startServer, startSim, stopAll } from './support/processes.ts';
import { type ReceivedMail, startSmtp, type TestSmtp } from './support/smtp.ts';
import { openPage, startViewsStack, type ViewsStack } from './support/views.ts';
import { waitFor } from './support/wait.ts';

// The demo's projects file with the nudge times cut to seconds (the rest as the demo has it).
const demoFile = readFileSync(join(repoRoot, 'examples/projects.yaml'), 'utf8');
const TEST_NUDGE = `nudge:
  after: 2s
  snooze: 2h
  escalateAfter: 6s
  opsAfter: 10m
  quietHours: null
  timeZone: Asia/Seoul
  dailyCapPerUser: 3
  linkValidFor: 10m
`;
const projectsText = demoFile.replace(/^nudge:\n(?:[ #].*\n?)+/m, TEST_NUDGE);

/** Addresses and languages as examples/projects.yaml says (users:, else the template and ko). */
const EXPLICIT: Record<string, { email?: string; language?: 'ko' | 'en' }> = {
  'kim.minji': { email: 'minji.kim@hanbit.example.ac.kr', language: 'ko' },
  'lee.jihoon': { email: 'jihoon.lee@telco.example.co.kr', language: 'ko' },
  'yoon.taeho': { language: 'en' },
  'kang.eunji': { language: 'en' },
};
const addressOf = (u: string) => EXPLICIT[u]?.email ?? `${u}@hanbit.example.ac.kr`;
const languageOf = (u: string) => EXPLICIT[u]?.language ?? 'ko';
const LEADS = new Set(
  ['kim.minji', 'lee.jihoon', 'park.seoyeon', 'choi.hyunwoo', 'jung.yuna', 'han.dohyun', 'oh.sujin'].map(
    addressOf,
  ),
);

describe('nudges over a real SMTP server', () => {
  let smtp: TestSmtp;
  let stack: ViewsStack;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    expect(projectsText).toContain('after: 2s');
    smtp = await startSmtp();
    dir = await mkdtemp(join(tmpdir(), 'gpupulse-nudge-'));
    const file = join(dir, 'projects.yaml');
    await writeFile(file, projectsText);
    env = {
      GPUPULSE_PROJECTS: file,
      GPUPULSE_SMTP_URL: smtp.url,
      GPUPULSE_SMTP_FROM: 'gpupulse@centre.example.ac.kr',
      GPUPULSE_IDLE_WINDOW_MS: '500',
      // Kept across the restart below (the link key and nothing else lives there).
      GPUPULSE_DATA_DIR: join(dir, 'data'),
    };
    stack = await startViewsStack(env);
    startSim(stack.server.url, [
      '--nodes',
      '4',
      '--gpus-per-node',
      '8',
      '--interval',
      '500',
      '--prefix',
      'nudge',
      '--seed',
      '7',
    ]);
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await stack?.stop();
    await smtp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const nudges = async (query = ''): Promise<NudgesList> => {
    const r = await fetch(`${stack.server.url}/api/v1/nudges${query}`);
    expect(r.status).toBe(200);
    return (await r.json()) as NudgesList;
  };

  let first: { mail: ReceivedMail; user: string };

  it('the owner of an idle-held GPU gets a message: right recipient, language and links', async () => {
    const sent = await waitFor(
      'a nudge e-mail sent',
      async () => {
        const list = await nudges();
        const r = list.nudges.filter((x) => x.kind === 'nudge' && x.email === 'sent');
        return r.length > 0 ? r : undefined;
      },
      60_000,
      250,
    );
    const base = stack.server.url;
    const checked = [];
    for (const rec of sent) {
      const to = addressOf(rec.user);
      const mail = await waitFor('the message at the SMTP server', async () =>
        smtp.messages.find((m) => m.to.includes(to) && m.text.includes(`${rec.node} / GPU ${rec.gpuIndex}`)),
      );
      expect(mail.from).toBe('gpupulse@centre.example.ac.kr');
      const lang = languageOf(rec.user);
      expect(mail.headers.get('content-language')).toBe(lang);
      if (lang === 'ko') {
        expect(mail.subject).toMatch(/GPU를 점유한 채 .*사용하지 않고 있습니다/);
        expect(mail.text).toContain('내 작업에서 보기');
      } else {
        expect(mail.subject).toContain('has been held idle');
        expect(mail.text).toContain('Open in My work');
      }
      expect(mail.text).toContain(`${base}/me?user=${encodeURIComponent(rec.user)}`);
      expect(mail.text).toMatch(
        new RegExp(`${base.replace(/[.:/]/g, '\\$&')}/nudge/snooze\\?t=[A-Za-z0-9_.-]+`),
      );
      expect(mail.html).toContain(`href="${base}/me?user=${encodeURIComponent(rec.user)}"`);
      expect(mail.html).toContain(`href="${base}/nudge/snooze?t=`);
      if (rec.process) expect(mail.text).toContain(rec.process);
      expect(mail.text).not.toContain('--config'); // the process name, never its command line
      checked.push({ mail, user: rec.user });
    }
    first = checked[0]!;
    // The message as it arrived (for the record).
    const h = first.mail.headers;
    console.log(
      [
        `envelope: MAIL FROM <${first.mail.from}> RCPT TO <${first.mail.to.join('>, <')}>`,
        ...['from', 'to', 'subject', 'date', 'message-id', 'content-language', 'content-type'].map(
          (k) => `${k}: ${h.get(k)}`,
        ),
      ].join('\n'),
    );
    // A Korean user gets Korean: most demo users are ko, so among the first nudges there is one.
    await waitFor(
      'a Korean nudge',
      async () =>
        smtp.messages.some((m) => m.headers.get('content-language') === 'ko' && /[가-힣]/.test(m.subject)),
      30_000,
    );
  }, 120_000);

  it('still idle after escalateAfter (6 s here): the project lead is told', async () => {
    const esc = await waitFor(
      'an escalation to a lead',
      async () => (await nudges()).nudges.find((x) => x.kind === 'escalation' && x.email === 'sent'),
      30_000,
      250,
    );
    expect(esc.to).toBe('lead');
    const nudge = (await nudges(`?user=${encodeURIComponent(esc.user)}`)).nudges.find(
      (x) => x.kind === 'nudge' && x.gpuUuid === esc.gpuUuid,
    );
    expect(nudge).toBeDefined();
    expect(esc.at - nudge!.at).toBeGreaterThanOrEqual(5_000);
    const mail = await waitFor('the lead message', async () =>
      smtp.messages.find(
        (m) =>
          m.to.some((a) => LEADS.has(a)) &&
          !m.text.includes('/nudge/snooze') &&
          m.text.includes(`${esc.node} / GPU ${esc.gpuIndex}`),
      ),
    );
    expect(mail.text).toContain(esc.user);
    expect(mail.text).not.toContain('/nudge/snooze');
  }, 60_000);

  it('clicking "I\'m still using it" in Chromium snoozes; the link then works no more', async () => {
    const link = /https?:\/\/\S+\/nudge\/snooze\?t=[A-Za-z0-9_.-]+/.exec(first.mail.text)![0];
    const lang = languageOf(first.user);
    const { page } = await openPage(stack.browser, stack.server.url, { locale: lang });
    await page.goto(link);
    await page.locator('button[type="submit"]').click();
    await page.waitForURL(/\/nudge\/snooze$/);
    const heading = await page.locator('h1').textContent();
    expect(heading).toBe(lang === 'ko' ? '알림을 껐습니다' : 'Nudges snoozed');
    await screenshot(page, `nudge-snoozed-${lang}`);
    const list = await nudges(`?user=${encodeURIComponent(first.user)}`);
    const snooze = list.nudges.find((x) => x.kind === 'snooze');
    expect(snooze).toBeDefined();
    expect(snooze!.until! - snooze!.at).toBe(2 * 3_600_000);
    expect(list.snoozes.some((s) => s.user === first.user && s.until === snooze!.until)).toBe(true);
    // Single use: the same link again.
    const again = await page.goto(link);
    expect(again?.status()).toBe(410);
    expect(await page.locator('h1').textContent()).toBe(
      lang === 'ko' ? '이미 사용된 링크입니다' : 'This link was already used',
    );
    const bad = await page.goto(`${stack.server.url}/nudge/snooze?t=forged.link`);
    expect(bad?.status()).toBe(400);
    await page.context().close();
  }, 60_000);

  it('My work and the GPU page show the nudge and the snooze, in en and ko', async () => {
    const list = await nudges(`?user=${encodeURIComponent(first.user)}`);
    const snooze = list.nudges.find((x) => x.kind === 'snooze')!;
    const nudge = list.nudges.find((x) => x.kind === 'nudge' && x.gpuUuid === snooze.gpuUuid)!;
    for (const locale of ['en', 'ko'] as const) {
      const { page, errors } = await openPage(stack.browser, stack.server.url, { locale });
      await page.goto(`${stack.server.url}/me?user=${encodeURIComponent(first.user)}`);
      const summary = page.locator('[data-testid="nudge-summary"]');
      await summary.waitFor({ timeout: 15_000 });
      expect(await summary.getAttribute('data-snoozed')).toBe(String(snooze.until));
      const text = (await summary.textContent()) ?? '';
      if (locale === 'en') expect(text).toMatch(/was nudged at .*; snoozed until /);
      else expect(text).toMatch(/알림을 보냈습니다; .*까지 알림 끔/);
      await screenshot(page, `nudge-mywork-${locale}`);
      await page.goto(`${stack.server.url}/node/${encodeURIComponent(nudge.node)}/gpu/${nudge.gpuIndex}`);
      await page.locator('[data-testid="nudge-summary"]').waitFor({ timeout: 15_000 });
      expect(await page.locator('[data-testid="nudge-record"][data-kind="nudge"]').count()).toBeGreaterThan(
        0,
      );
      await screenshot(page, `nudge-gpu-${locale}`);
      expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
      await page.context().close();
    }
  }, 60_000);

  it('counts e-mails in /metrics', async () => {
    const text = await (await fetch(`${stack.server.url}/metrics`)).text();
    const sent = /gpupulse_nudge_emails_total\{result="sent"\} (\d+)/.exec(text);
    expect(Number(sent?.[1] ?? 0)).toBeGreaterThan(0);
    expect(text).toMatch(/gpupulse_mail_messages_total\{result="ok"\} [1-9]/);
  });

  it('after a restart the records are read back from InfluxDB and a used link stays used', async () => {
    const before = (await nudges('?limit=5000')).nudges;
    const token = /\/nudge\/snooze\?t=([A-Za-z0-9_.-]+)/.exec(first.mail.text)![1]!;
    await stack.server.stop();
    const again = await startServer({ ...env, GPUPULSE_INFLUX_URL: stack.influxd.url });
    try {
      const ids = new Set(before.map((r) => r.id));
      const back = await waitFor('records read back', async () => {
        const r = await fetch(`${again.url}/api/v1/nudges?limit=5000`);
        const list = (await r.json()) as NudgesList;
        return list.nudges.filter((x) => ids.has(x.id)).length === ids.size ? list : undefined;
      });
      expect(back.snoozes.some((x) => x.user === first.user)).toBe(true);
      const res = await fetch(`${again.url}/nudge/snooze`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `t=${encodeURIComponent(token)}`,
      });
      expect(res.status).toBe(410);
    } finally {
      await again.stop();
    }
  }, 60_000);
});
