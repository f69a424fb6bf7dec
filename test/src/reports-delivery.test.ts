// Scheduled delivery of the monthly reports over a real SMTP server (smtp-server), on an injected
// clock: from the 1st the last month's report reaches each institution's `reportTo` addresses in
// its language with the PDF attached; exactly once across ticks, a restart, and two server
// processes sharing the data directory.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type GpupulseServer, ManualClock } from '@gpupulse/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtp, type TestSmtp } from './support/smtp.ts';

const PROJECTS = `
institutions:
  - id: univ
    name: { en: Seoul National University, ko: 서울대학교 }
    reportTo: [dean@univ.example.ac.kr, gpu-office@univ.example.ac.kr]
    reportLanguage: ko
  - id: kist
    name: { en: KIST, ko: 한국과학기술연구원 }
    reportTo: [director@kist.example.re.kr]
    reportLanguage: en
  - id: quiet
    name: { en: No recipients }
projects:
  - id: alpha
    institution: univ
    share: { gpuHoursPerMonth: 500 }
  - id: beta
    institution: kist
`;

describe('monthly report e-mails (real SMTP server, injected clock)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpupulse-delivery-'));
  const clock = new ManualClock(new Date(2026, 11, 1, 0, 5).getTime());
  let smtp: TestSmtp;
  const servers: GpupulseServer[] = [];

  const start = async () => {
    const s = await createServer({
      clock,
      config: {
        port: 0,
        host: '127.0.0.1',
        agentTokens: ['t'],
        projectsFile: join(dir, 'projects.yaml'),
        dataDir: dir,
        publicUrl: 'https://gpupulse.example.ac.kr',
        smtp: { url: smtp.url, from: 'gpupulse@centre.example.ac.kr' },
      },
    });
    servers.push(s);
    return s;
  };
  const waitMessages = async (n: number) => {
    for (let i = 0; i < 200 && smtp.messages.length < n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(smtp.messages.length).toBe(n);
  };

  beforeAll(async () => {
    writeFileSync(join(dir, 'projects.yaml'), PROJECTS);
    smtp = await startSmtp();
  });
  afterAll(async () => {
    for (const s of servers) await s.close().catch(() => {});
    await smtp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('on the 1st: last month to each institution, in its language, PDF attached', async () => {
    const server = await start();
    expect(server.reportDelivery).not.toBeNull();
    await server.reportDelivery!.tick();
    await waitMessages(2);
    const univ = smtp.messages.find((m) => m.to.includes('dean@univ.example.ac.kr'))!;
    const kist = smtp.messages.find((m) => m.to.includes('director@kist.example.re.kr'))!;
    expect(univ.to.sort()).toEqual(['dean@univ.example.ac.kr', 'gpu-office@univ.example.ac.kr']);
    expect(univ.subject).toBe('[gpupulse] GPU 사용 보고서 2026-11 · 서울대학교');
    expect(univ.headers.get('content-language')).toBe('ko');
    expect(univ.text).toContain('서울대학교의 2026-11 GPU 사용 보고서입니다.');
    expect(univ.text).toContain('https://gpupulse.example.ac.kr/reports/2026-11?institution=univ&lang=ko');
    expect(univ.html).toContain('<html lang="ko">');
    expect(univ.raw).toMatch(/filename="?gpupulse-report-2026-11-univ\.pdf"?/);
    expect(univ.raw).toContain('JVBERi0'); // base64 of "%PDF-"
    expect(kist.subject).toBe('[gpupulse] GPU usage report 2026-11 · KIST');
    expect(kist.headers.get('content-language')).toBe('en');
    expect(kist.raw).toMatch(/filename="?gpupulse-report-2026-11-kist\.pdf"?/);
    expect(univ.from).toBe('gpupulse@centre.example.ac.kr');
    console.log(
      'report e-mail headers:',
      JSON.stringify(
        Object.fromEntries(
          ['from', 'to', 'subject', 'content-language', 'content-type'].map((h) => [h, univ.headers.get(h)]),
        ),
      ),
    );
    // The claims record what was sent.
    const claims = readdirSync(join(dir, 'reports', '2026-11'))
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(claims).toEqual(['kist.json', 'univ.json']);
    expect(JSON.parse(readFileSync(join(dir, 'reports', '2026-11', 'univ.json'), 'utf8'))).toMatchObject({
      state: 'sent',
      attachment: 'pdf',
    });
    // Later ticks the same month send nothing more.
    clock.advance(3 * 3_600_000);
    await server.reportDelivery!.tick();
    clock.set(new Date(2026, 11, 15, 12, 0).getTime());
    await server.reportDelivery!.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.length).toBe(2);
    await server.close();
  }, 120_000);

  it('once across a restart and across two processes sharing the data directory', async () => {
    const again = await start();
    await again.reportDelivery!.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messages.length).toBe(2);
    await again.close();

    // New Year's Day: two processes at once; December goes out once per institution.
    clock.set(new Date(2027, 0, 1, 0, 5).getTime());
    const [a, b] = await Promise.all([start(), start()]);
    await Promise.all([a.reportDelivery!.tick(), b.reportDelivery!.tick(), a.reportDelivery!.tick()]);
    await waitMessages(4);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.messages.length).toBe(4);
    expect(
      smtp.messages
        .slice(2)
        .map((m) => m.subject)
        .sort(),
    ).toEqual([
      '[gpupulse] GPU usage report 2026-12 · KIST',
      '[gpupulse] GPU 사용 보고서 2026-12 · 서울대학교',
    ]);
    expect(a.reportDelivery!.stats.sent + b.reportDelivery!.stats.sent).toBe(2);
  }, 120_000);
});
