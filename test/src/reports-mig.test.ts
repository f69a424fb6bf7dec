// MIG-weighted accounting, fair share, CO2e and the monthly report, end to end: the real agent
// (`gpupulse-agent --once`) reads the shared H200 MIG capture and the H100 capture through the fake
// nvidia-smi, with real processes (their GPUPULSE_PROJECT read from /proc); its samples go over
// Socket.IO into a real server (in-memory store, a manual clock); the answers of
// /api/v1/projects, /api/v1/usage and /api/v1/reports are checked against a hand calculation.
// The PDF is rendered by headless Chromium; page 1 is read with pdftotext and drawn with pdftoppm
// into test/artifacts/.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AGENT_NAMESPACE,
  PROTOCOL_VERSION,
  type ProjectsUsage,
  ProjectsUsageSchema,
  type Report,
  ReportSchema,
  type Sample,
  SampleSchema,
  UsageResponseSchema,
} from '@gpupulse/protocol';
import {
  attributeUnassigned,
  attributionFromFn,
  createServer,
  type GpupulseServer,
  ManualClock,
  MemoryStore,
  splitGpu,
} from '@gpupulse/server';
import type { Browser } from 'playwright-core';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot, watchErrors } from './support/browser.ts';
import { agentBin, artifactsDir, fakeNvidiaSmi } from './support/paths.ts';

const run = promisify(execFile);
const MIN = 60_000;
const HOUR = 60 * MIN;
const TOKEN = 'reports-token';
const H200_MIG = 'linux-x86_64__nvidia-h200-mig__590.48.01.txt';
const H100 = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const PARENT_UUID = 'GPU-00000000-0000-0000-0000-000000000000';
/** The `2g.35gb` instance of the capture (`-L`: `MIG 2g.35gb Device 2`), GPU instance 3. */
const MIG_2G_UUID = 'MIG-00000002-0000-0000-0000-000000000002';

/*
 * Hand calculation (the test fleet, 600 one-second samples = 10 minutes):
 *
 * node mig-h200 (H200, MIG on: 7 compute slices; the capture's 5 MIG devices are
 *   1c.3g.71gb (GI 2, 16925 MiB used), 2c.3g.71gb (GI 2, 16925 MiB), 2g.35gb (GI 3, 17 MiB),
 *   1g.18gb (GI 9, 9 MiB), 1g.18gb (GI 10, 9 MiB); power 295.01 W; utilization [N/A])
 *   - alpha's process on MIG-…0002 (the 2g.35gb):                2/7 GPU = 0.285714
 *   - beta's process on the parent GPU uuid (what --query-compute-apps names in MIG mode):
 *     not placed → the GPU instances holding memory and not claimed: GI 2 (3g) → 3/7 = 0.428571
 * node h100 (H100, no MIG; 631.95 W, 100 % busy)
 *   - alpha's process: 1 GPU
 *
 * live gpusInUse:   alpha 2/7 + 1 = 1.2857, beta 3/7 = 0.4286, cluster equivalents 12/7 = 1.7143
 *                   (whole GPUs held: 2)
 * GPU-hours (10 min = 1/6 h; all busy: utilization [N/A] under MIG is never idle, the H100 is at 100 %):
 *   alpha (9/7)/6 = 0.214286, beta (3/7)/6 = 0.071429, total 0.285714
 *   (without MIG weighting it would be alpha 2/6 = 0.333333 — the MIG GPU counted whole —
 *    and beta 1/6, splitting the parent GPU by memory between them)
 * energy: alpha (631.95 + 2/7 × 295.01) W × 1/6 h = 119.3731 Wh = 0.119373 kWh
 *         beta  (3/7 × 295.01) W × 1/6 h = 21.0721 Wh = 0.021072 kWh
 * CO2e (PUE 1.2, 417.3 g/kWh): alpha 0.119373 × 1.2 × 417.3 / 1000 = 0.059778 kg
 *                               beta  0.021072 × 1.2 × 417.3 / 1000 = 0.010552 kg
 * share (month): alpha agreed 0.15 GPU-h/month → used 0.214286 = 142.857 % → over share;
 *   beta agreed 50 % of the centre: 2 GPUs × 720 h (November) × 0.5 = 720 GPU-h → 0.0099 %
 */
const HAND = {
  alphaGpus: 2 / 7 + 1,
  betaGpus: 3 / 7,
  alphaGpuHours: 9 / 7 / 6,
  betaGpuHours: 3 / 7 / 6,
  alphaKWh: (631.95 + (2 / 7) * 295.01) / 6 / 1000,
  betaKWh: ((3 / 7) * 295.01) / 6 / 1000,
  co2(kwh: number) {
    return (kwh * 1.2 * 417.3) / 1000;
  },
};

const PROJECTS_YAML = `
institutions:
  - id: univ
    name: { en: Seoul National University, ko: 서울대학교 }
    share: { gpuHoursPerMonth: 100 }
  - id: kist
    name: { en: KIST, ko: 한국과학기술연구원 }
    share: { percent: 50 }
projects:
  - id: alpha
    name: { en: Alpha LLM, ko: 알파 언어모델 }
    institution: univ
    share: { gpuHoursPerMonth: 0.15 }
  - id: beta
    name: { en: Beta Imaging, ko: 베타 의료영상 }
    institution: kist
    share: { percent: 50 }
carbon: { gridGramsPerKWh: 417.3, pue: 1.2 }
`;

/** One sample of `gpupulse-agent --once` on a capture with the given compute apps. */
async function agentOnce(capture: string, apps: unknown[] | null): Promise<Sample> {
  // `--once` sends what its collectors have after a bounded wait; on a loaded machine the process
  // list may come late, so the run is repeated (at most 5 times) until it carries every app.
  for (let attempt = 1; ; attempt++) {
    const s = await agentOnceRun(capture, apps);
    if (apps === null || (s.processes?.length ?? 0) === apps.length || attempt >= 5) return s;
  }
}

async function agentOnceRun(capture: string, apps: unknown[] | null): Promise<Sample> {
  const { stdout } = await run(
    process.execPath,
    [agentBin, '--once', '--node', 'x', '--nvidia-smi', fakeNvidiaSmi],
    {
      env: {
        ...process.env,
        FAKE_NVIDIA_SMI_CAPTURE: capture,
        FAKE_NVIDIA_SMI_STATE: 'load',
        ...(apps ? { FAKE_NVIDIA_SMI_APPS: JSON.stringify(apps) } : {}),
      },
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return SampleSchema.parse(JSON.parse(stdout));
}

const near = (a: number | null | undefined, b: number, digits = 4) => expect(a).toBeCloseTo(b, digits);

describe('MIG-weighted accounting, share, CO2e and the report (real agent on the shared captures)', () => {
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'gpupulse-reports-'));
  // Monday 30 November 2026, 20:00 local: ten minutes of use; the report is read on 1 December.
  const T0 = new Date(2026, 10, 30, 20, 0, 0).getTime();
  const clock = new ManualClock(T0);
  const store = new MemoryStore({ now: () => clock.now(), maxAgeMs: 30 * 24 * HOUR });
  let server: GpupulseServer;
  let browser: Browser | null = null;
  let mig: Sample;
  let h100: Sample;

  beforeAll(async () => {
    const pids: Record<string, number> = {};
    for (const [key, project] of [
      ['alphaMig', 'alpha'],
      ['alphaH100', 'alpha'],
      ['beta', 'beta'],
    ] as const) {
      const child = spawn('sleep', ['600'], {
        env: { ...process.env, GPUPULSE_PROJECT: project },
        stdio: 'ignore',
      });
      children.push(child);
      pids[key] = child.pid!;
    }
    mig = await agentOnce(H200_MIG, [
      { gpu_uuid: MIG_2G_UUID, pid: pids.alphaMig, process_name: 'train.py', used_gpu_memory: 12000 },
      { gpu_uuid: PARENT_UUID, pid: pids.beta, process_name: 'segment.py', used_gpu_memory: 16000 },
    ]);
    h100 = await agentOnce(H100, [{ pid: pids.alphaH100, process_name: 'train.py', used_gpu_memory: 30000 }]);
    writeFileSync(join(dir, 'projects.yaml'), PROJECTS_YAML);
    server = await createServer({
      clock,
      store,
      config: {
        port: 0,
        host: '127.0.0.1',
        agentTokens: [TOKEN],
        projectsFile: join(dir, 'projects.yaml'),
        rollupGraceMs: 0,
        dataDir: dir,
      },
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    for (const c of children) c.kill('SIGKILL');
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the captures hold what the hand calculation assumes', () => {
    const g = mig.gpus[0]!;
    expect(g.migModeCurrent).toBe(true);
    expect(g.name).toBe('NVIDIA H200');
    expect(g.utilizationGpuPercent).toBeNull();
    expect(g.powerDrawWatts).toBe(295.01);
    expect(g.migDevices?.map((d) => [d.profile, d.gpuInstanceId, d.memoryUsedMiB])).toEqual([
      ['1c.3g.71gb', 2, 16925],
      ['2c.3g.71gb', 2, 16925],
      ['2g.35gb', 3, 17],
      ['1g.18gb', 9, 9],
      ['1g.18gb', 10, 9],
    ]);
    expect(mig.processes?.map((p) => [p.gpuUuid, p.env?.GPUPULSE_PROJECT])).toEqual([
      [MIG_2G_UUID, 'alpha'],
      [PARENT_UUID, 'beta'],
    ]);
    expect(h100.gpus[0]).toMatchObject({
      migModeCurrent: false,
      powerDrawWatts: 631.95,
      utilizationGpuPercent: 100,
    });
  });

  it("the capture's own processes are placed by the default table's GI/CI: 2c.3g.71gb = 2/7 of the GPU", async () => {
    // `--query-compute-apps` names the parent GPU; the default table says GI 2, CI 1 for all three
    // (memhog 2194, memhog 1170, gpu_burn 13526 MiB) → the `2c.3g.71gb` compute instance, 2 slices.
    const own = await agentOnce(H200_MIG, null);
    expect(own.processes?.map((p) => [p.pid, p.gpuUuid, p.gpuInstanceId, p.computeInstanceId])).toEqual([
      [12249, PARENT_UUID, 2, 1],
      [12250, PARENT_UUID, 2, 1],
      [12267, PARENT_UUID, 2, 1],
    ]);
    const shares = splitGpu(attributionFromFn(attributeUnassigned), 'n', own.gpus[0]!, own.processes!);
    near(
      shares.reduce((a, s) => a + s.weight, 0),
      2 / 7,
      9,
    );
    near(shares[2]!.weight, (2 / 7) * (13526 / (2194 + 1170 + 13526)), 9);
  }, 120_000);

  it('live usage, GPU-hours, energy, CO2e and share match the hand calculation', async () => {
    const send = async (node: string, s: Sample) => {
      const socket = io(server.url + AGENT_NAMESPACE, {
        auth: { token: TOKEN, node, protocolVersion: PROTOCOL_VERSION, intervalMs: 1000 },
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      for (let b = 0; b < 6; b++) {
        const samples = Array.from({ length: 100 }, (_, k) => {
          const i = b * 100 + k;
          return { ...s, seq: i, ts: T0 + i * 1000 };
        });
        const ack = await socket.timeout(10_000).emitWithAck('samples:report', { samples });
        expect(ack.ok, JSON.stringify(ack).slice(0, 300)).toBe(true);
      }
      return socket;
    };
    clock.set(T0 + 10 * MIN);
    const sockets = [await send('mig-h200', mig), await send('h100', h100)];

    // Live: /api/v1/projects.
    server.tick();
    const live: ProjectsUsage = ProjectsUsageSchema.parse(
      await (await fetch(`${server.url}/api/v1/projects`)).json(),
    );
    const p = (id: string) => live.projects.find((x) => x.project === id)!;
    near(p('alpha').gpusInUse, HAND.alphaGpus);
    near(p('beta').gpusInUse, HAND.betaGpus);
    near(live.cluster.gpuEquivalentsInUse, HAND.alphaGpus + HAND.betaGpus);
    expect(live.cluster.gpusInUse).toBe(2);
    expect(live.carbon).toEqual({ gridGramsPerKWh: 417.3, pue: 1.2 });
    for (const s of sockets) s.disconnect();

    // Rollups: the hour is written, then usage by project.
    clock.set(T0 + HOUR + 1);
    server.rollups.flush();
    await server.rollups.settle();
    for (let i = 0; i < 100 && !store.points().some((x) => x.measurement.endsWith('_1h')); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(store.points().filter((x) => x.measurement.endsWith('_1h')).length).toBeGreaterThan(0);
    const usage = UsageResponseSchema.parse(
      await (
        await fetch(`${server.url}/api/v1/usage?from=${T0}&to=${T0 + HOUR}&groupBy=project&period=month`)
      ).json(),
    );
    const row = (k: string) => usage.rows.find((r) => r.key === k)!;
    near(row('alpha').gpuHours, HAND.alphaGpuHours, 5);
    near(row('beta').gpuHours, HAND.betaGpuHours, 5);
    near(row('alpha').busyGpuHours, HAND.alphaGpuHours, 5);
    near(row('alpha').idleHeldGpuHours, 0, 6);
    near(row('alpha').energyKWh, HAND.alphaKWh, 5);
    near(row('beta').energyKWh, HAND.betaKWh, 5);
    near(row('alpha').co2eKg, HAND.co2(HAND.alphaKWh), 4);
    near(row('beta').co2eKg, HAND.co2(HAND.betaKWh), 4);
    expect(row('alpha').share).toMatchObject({ agreedGpuHours: 0.15, overShare: true, period: 'month' });
    near(row('alpha').share?.usedPercent, (HAND.alphaGpuHours / 0.15) * 100, 2);
    expect(row('beta').share).toMatchObject({ agreedGpuHours: 720, overShare: false });

    const csv = await (
      await fetch(
        `${server.url}/api/v1/usage?from=${T0}&to=${T0 + HOUR}&groupBy=project&period=month&format=csv`,
      )
    ).text();
    expect(csv.split('\r\n')[0]).toBe(
      'period_start,project,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh,idle_held_energy_kwh,co2e_kg,agreed_gpu_hours,share_used_percent,over_share',
    );
    expect(csv).toMatch(/,alpha,0\.214286,0,0\.214286,0\.119373,0,0\.0598,0\.15,142\.857\d*,true\r\n/);

    // Live share: month-to-date from the rollups.
    await server.periodUsage.refresh();
    server.tick();
    const again = ProjectsUsageSchema.parse(await (await fetch(`${server.url}/api/v1/projects`)).json());
    const alpha = again.projects.find((x) => x.project === 'alpha')!;
    expect(alpha.share).toMatchObject({ overShare: true, agreedGpuHours: 0.15 });
    near(alpha.share?.usedGpuHours, HAND.alphaGpuHours, 4);
    expect(again.institutions?.find((i) => i.institution === 'univ')).toMatchObject({
      projects: ['alpha'],
      share: { agreedGpuHours: 100, overShare: false },
      projectsAgreedGpuHours: 0.15,
    });
    // The Projects page flags the over-share project (the server's decision, drawn).
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(`${server.url}/projects?lang=en`);
    await page
      .locator('[data-testid="share-table"] tr[data-project="alpha"][data-status="over"]')
      .waitFor({ timeout: 20_000 });
    expect(
      await page.locator('[data-testid="share-table"] tr[data-project="beta"]').getAttribute('data-status'),
    ).toBe('within');
    await screenshot(page, 'share-projects-en');
    // … and so does Trends, with CO2e and idle-held energy next to kWh.
    await page.goto(`${server.url}/trends?lang=ko`);
    await page
      .locator('[data-testid="share-table"] tr[data-project="alpha"][data-status="over"]')
      .waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid="trends-figures"] [data-key="co2e"] dt').textContent()).toBe(
      '탄소배출 CO₂e (kg)',
    );
    await page.locator('[data-testid="trends-figures"] [data-key="idleEnergy"]').waitFor();
    await screenshot(page, 'share-trends-ko');
    expect(errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
    await page.close();
    console.log(
      `MIG-weighted fleet, hand vs API: alpha ${HAND.alphaGpuHours.toFixed(6)} vs ${row('alpha').gpuHours} GPU-h, ` +
        `beta ${HAND.betaGpuHours.toFixed(6)} vs ${row('beta').gpuHours} GPU-h; live gpus alpha ${p('alpha').gpusInUse}, ` +
        `beta ${p('beta').gpusInUse}; alpha ${row('alpha').energyKWh} kWh ${row('alpha').co2eKg} kg CO2e`,
    );
  }, 120_000);

  it('the November report (JSON, CSV, PDF in Korean and English)', async () => {
    clock.set(new Date(2026, 11, 1, 9, 0).getTime());
    const res = await fetch(`${server.url}/api/v1/reports/2026-11`);
    expect(res.status).toBe(200);
    const report: Report = ReportSchema.parse(await res.json());
    expect(report).toMatchObject({
      period: '2026-11',
      kind: 'month',
      complete: true,
      institution: null,
      centreGpus: 2,
    });
    near(report.totals.gpuHours, HAND.alphaGpuHours + HAND.betaGpuHours);
    expect(report.projects.map((x) => x.project)).toEqual(['alpha', 'beta']);
    expect(report.projects[0]!.share.overShare).toBe(true);
    near(report.totals.co2eKg, HAND.co2(HAND.alphaKWh + HAND.betaKWh), 3);
    expect(report.trend).toHaveLength(1);
    expect(report.nudges.available).toBe(false);
    expect(report.previous.period).toBe('2026-10');
    expect(JSON.stringify(report)).not.toContain('root'); // no user names

    const kist = ReportSchema.parse(
      await (await fetch(`${server.url}/api/v1/reports/2026-11?institution=kist`)).json(),
    );
    expect(kist.projects.map((x) => x.project)).toEqual(['beta']);
    near(kist.totals.gpuHours, HAND.betaGpuHours);
    expect(kist.share.agreedGpuHours).toBe(720);

    const week = ReportSchema.parse(await (await fetch(`${server.url}/api/v1/reports/2026-W49`)).json());
    expect(week.from).toBe(new Date(2026, 10, 30).getTime());
    expect(week.complete).toBe(false);
    near(week.totals.gpuHours, HAND.alphaGpuHours + HAND.betaGpuHours);

    for (const [q, status] of [
      ['2026-13', 400],
      ['2026-W60', 400],
      ['2026-11?institution=nope', 404],
      ['2026-11?lang=fr', 400],
      ['2026-11?bogus=1', 400],
      ['2099-01', 400],
    ] as const) {
      expect((await fetch(`${server.url}/api/v1/reports/${q}`)).status, q).toBe(status);
    }

    const csv = await (await fetch(`${server.url}/api/v1/reports/2026-11.csv`)).text();
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'period,section,key,institution,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh,idle_held_energy_kwh,co2e_kg,idle_held_co2e_kg,agreed_gpu_hours,share_used_percent,over_share',
    );
    expect(lines.find((l) => l.startsWith('2026-11,project,alpha,univ,'))).toMatch(
      /,0\.15,142\.857\d*,true$/,
    );

    mkdirSync(artifactsDir, { recursive: true });
    for (const lang of ['ko', 'en'] as const) {
      const pdfRes = await fetch(`${server.url}/api/v1/reports/2026-11.pdf?lang=${lang}`);
      expect(
        pdfRes.status,
        await pdfRes
          .clone()
          .text()
          .then((t) => t.slice(0, 300)),
      ).toBe(200);
      expect(pdfRes.headers.get('content-type')).toBe('application/pdf');
      const pdf = Buffer.from(await pdfRes.arrayBuffer());
      const file = join(dir, `report-${lang}.pdf`);
      writeFileSync(file, pdf);
      const page1 = execFileSync('pdftotext', ['-f', '1', '-l', '1', '-layout', file, '-']).toString();
      if (lang === 'ko') {
        expect(page1).toContain('GPU 사용 보고서');
        expect(page1).toContain('센터 전체');
        expect(page1, page1).toContain('알파 언어모델');
      } else {
        expect(page1).toContain('GPU usage report');
        expect(page1).toContain('Alpha LLM');
      }
      execFileSync('pdftoppm', [
        '-f',
        '1',
        '-l',
        '1',
        '-png',
        '-r',
        '70',
        '-singlefile',
        file,
        join(artifactsDir, `report-2026-11-${lang}`),
      ]);
    }

    // The printable page /reports/2026-11 in Korean and English.
    browser ??= await launchBrowser();
    for (const lang of ['ko', 'en'] as const) {
      const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
      await page.goto(`${server.url}/reports/2026-11?lang=${lang}`);
      await page.locator('[data-testid="report"][data-state="ready"]').waitFor({ timeout: 20_000 });
      const text = (await page.locator('[data-testid="report"]').textContent()) ?? '';
      expect(text).toContain(lang === 'ko' ? 'GPU 사용 보고서' : 'GPU usage report');
      expect(text).toContain(lang === 'ko' ? '알파 언어모델' : 'Alpha LLM');
      expect(
        await page
          .locator('[data-testid="report-projects"] tr[data-project="alpha"]')
          .getAttribute('data-over'),
      ).toBe('true');
      expect(await page.locator('[data-testid="report-pdf"]').getAttribute('href')).toBe(
        `/api/v1/reports/2026-11.pdf?lang=${lang}`,
      );
      await screenshot(page, `report-page-${lang}`);
      await page.emulateMedia({ media: 'print' });
      expect(await page.locator('.app-header').isVisible()).toBe(false);
      await page.close();
    }
  }, 180_000);

  it('without Chromium the PDF is a clear 503 and JSON/CSV still work', async () => {
    const before = process.env.GPUPULSE_CHROMIUM;
    process.env.GPUPULSE_CHROMIUM = '/nonexistent/chromium';
    const other = await createServer({
      config: { port: 0, host: '127.0.0.1', agentTokens: [TOKEN], dataDir: dir },
    });
    if (before === undefined) delete process.env.GPUPULSE_CHROMIUM;
    else process.env.GPUPULSE_CHROMIUM = before;
    try {
      const last = new Date();
      const period = `${last.getFullYear()}-${String(last.getMonth() + 1).padStart(2, '0')}`;
      const res = await fetch(`${other.url}/api/v1/reports/${period}.pdf`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.message).toContain('headless Chromium at /nonexistent/chromium');
      expect((await fetch(`${other.url}/api/v1/reports/${period}.csv`)).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
