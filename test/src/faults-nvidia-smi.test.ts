// Fault: nvidia-smi hangs, then fails, then recovers, under a real agent (the fake nvidia-smi
// behind a wrapper whose mode the test switches while the agent runs). The node's GPUs must go
// stale → error → live in the dashboard's state (a real Socket.IO dashboard client) and on
// screen (the node page in Chromium, one screenshot per phase in test/artifacts/).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NodeView } from '@gpupulse/protocol';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from './support/browser.ts';
import { connectDashboard, type TestDashboard } from './support/dashboard.ts';
import { startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { repoRoot } from './support/paths.ts';
import { type Proc, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

const NODE = 'nvsmi-fault';
const WRAPPER = resolve(repoRoot, 'test/src/support/moded-nvidia-smi.mjs');

type Phase = 'ok' | 'stale' | 'error';
/** What the dashboard shows for the node's GPUs. */
function phaseOf(n: NodeView | undefined): Phase | 'other' {
  if (!n) return 'other';
  const states = new Set(n.gpus.map((g) => g.state));
  if (n.gpuCollector === 'ok' && n.gpus.length > 0 && states.size === 1 && states.has('ok')) return 'ok';
  if (n.gpuCollector === 'stale' && n.gpus.length > 0 && [...states].every((s) => s === 'stale'))
    return 'stale';
  if (n.gpuCollector === 'error' && [...states].every((s) => s === 'error')) return 'error';
  return 'other';
}

describe('fault: nvidia-smi hangs, fails, recovers (real agent, real server, Chromium)', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let browser: Browser;
  let dash: TestDashboard;
  let dir: string;
  let agent: Proc;

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url });
    browser = await launchBrowser();
    dir = await mkdtemp(join(tmpdir(), 'gpupulse-nvsmi-'));
  });

  afterAll(async () => {
    dash?.close();
    await browser?.close().catch(() => {});
    await stopAll();
    await influx?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('GPUs go stale → error → live, in the dashboard state and on screen', async () => {
    const modeFile = join(dir, 'mode');
    await writeFile(modeFile, 'ok');
    dash = connectDashboard(server.url);
    const seen: { at: number; phase: Phase | 'other' }[] = [];
    const watch = () => {
      const p = phaseOf(dash.nodes.get(NODE));
      if (seen.at(-1)?.phase !== p) seen.push({ at: Date.now(), phase: p });
    };
    dash.socket.on('fleet:delta', watch);
    dash.socket.on('fleet:snapshot', watch);
    agent = startAgent({
      server: server.url,
      node: NODE,
      intervalMs: 1000,
      extraArgs: ['--nvidia-smi', WRAPPER, '--kmsg', 'off'],
      env: { FAKE_NVIDIA_SMI_MODE_FILE: modeFile, FAKE_NVIDIA_SMI_GPUS: '2' },
    });
    const page: Page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(`${server.url}/node/${encodeURIComponent(NODE)}`);
    const collector = page.locator('[data-testid="node-collector"]');
    const reach = async (phase: Phase, timeoutMs: number) => {
      await waitFor(`GPUs ${phase}`, () => phaseOf(dash.nodes.get(NODE)) === phase, timeoutMs, 100).catch(
        (err: Error) => {
          throw new Error(
            `${err.message}; phases seen: ${seen.map((s) => s.phase).join(' → ')}; node: ${JSON.stringify({
              gpuCollector: dash.nodes.get(NODE)?.gpuCollector,
              gpuError: dash.nodes.get(NODE)?.gpuError,
              states: dash.nodes.get(NODE)?.gpus.map((g) => g.state),
            })}\n--- agent ---\n${agent.output().slice(-2500)}`,
          );
        },
      );
      return Date.now();
    };

    await reach('ok', 30_000);
    await page.locator('[data-testid="detail-title"]').waitFor({ timeout: 30_000 });
    expect(await collector.count()).toBe(0); // nothing to say while all is well

    await writeFile(modeFile, 'hang');
    const hungAt = Date.now();
    const staleAt = await reach('stale', 20_000);
    await waitFor(
      '"GPU data stale" on screen',
      async () => /GPU data stale/.test((await collector.textContent()) ?? ''),
      10_000,
      200,
    );
    await screenshot(page, 'faults-nvidia-smi-1-stale');

    await writeFile(modeFile, 'fail');
    const errorAt = await reach('error', 60_000);
    await waitFor(
      '"GPU collector error" and the driver message on screen',
      async () => {
        const text = (await collector.textContent()) ?? '';
        return /GPU collector error/.test(text) && /Unable to determine the device handle/.test(text);
      },
      10_000,
      200,
    );
    await screenshot(page, 'faults-nvidia-smi-2-error');

    await writeFile(modeFile, 'ok');
    const liveAt = await reach('ok', 90_000);
    await waitFor(
      'the warning gone from the screen',
      async () => (await collector.count()) === 0,
      10_000,
      200,
    );
    await screenshot(page, 'faults-nvidia-smi-3-live');

    const order = seen.map((s) => s.phase).filter((p) => p !== 'other');
    console.info(
      `faults-nvidia-smi: ${JSON.stringify({
        phases: order,
        staleAfterHangMs: staleAt - hungAt,
        errorAfterFailMs: errorAt - staleAt,
        liveAfterRecoverMs: liveAt - errorAt,
      })}`,
    );
    // in this order, each once: ok, stale, error, ok
    const compact = order.filter((p, i) => p !== order[i - 1]);
    expect(compact).toEqual(['ok', 'stale', 'error', 'ok']);
    expect(agent.child.exitCode).toBeNull();
    expect(server.child.exitCode).toBeNull();
  }, 240_000);
});
