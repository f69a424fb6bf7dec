import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDashboard, type TestDashboard } from './support/dashboard.ts';
import { rows, startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { repoRoot } from './support/paths.ts';
import { type Proc, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

// The production bundle (server/scripts/build.mjs → server/dist/gpupulse-server.mjs) builds, starts
// as a user starts it (plain `node`, no TypeScript loader) against a real influxd, and does the
// server's job: a real agent connects to /agent, its samples reach the fleet, a dashboard and InfluxDB.
const BUNDLE = resolve(repoRoot, 'server/dist/gpupulse-server.mjs');
const NODE = 'bundle-node-1';

describe('gpupulse-server production bundle', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let agent: Proc;
  let dash: TestDashboard;

  beforeAll(async () => {
    execFileSync(process.execPath, [resolve(repoRoot, 'server/scripts/build.mjs')], { stdio: 'pipe' });
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url }, { entry: BUNDLE });
    dash = connectDashboard(server.url);
    agent = startAgent({ server: server.url, node: NODE, intervalMs: 500 });
  });

  afterAll(async () => {
    dash?.close();
    await stopAll();
    await influx?.stop();
  });

  it('is one plain-JavaScript file: workspace packages bundled, no TypeScript loader', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(text).not.toMatch(/from\s*["']@gpupulse\//);
    expect(text).not.toMatch(/["']tsx(\/[^"']*)?["']/);
    expect(server.child.spawnargs.slice(1)).toEqual([BUNDLE]);
  });

  it('answers /api/v1/health with its version and InfluxDB storage; finds the web app from dist/', async () => {
    const health = (await (await fetch(`${server.url}/api/v1/health`)).json()) as {
      status: string;
      version: string;
      storage: { kind: string; ok: boolean };
    };
    const pkg = JSON.parse(readFileSync(resolve(repoRoot, 'server/package.json'), 'utf8')) as {
      version: string;
    };
    expect(health.status).toBe('ok');
    expect(health.version).toBe(pkg.version); // ../package.json, resolved from dist/
    expect(health.storage).toMatchObject({ kind: 'influxdb', ok: true });
    // the default web dir (../../web/dist from the bundle) is the repository's web/dist
    const listening = server
      .output()
      .split('\n')
      .filter((l) => l.includes('"webDir"'))
      .map((l) => JSON.parse(l) as { webDir: string });
    expect(listening[0]?.webDir).toBe(resolve(repoRoot, 'web/dist'));
  });

  it('a real agent connects; its node is in /api/v1/fleet, on a dashboard and in InfluxDB', async () => {
    const node = await waitFor(
      'the agent node in /api/v1/fleet',
      async () => {
        const body = (await (await fetch(`${server.url}/api/v1/fleet`)).json()) as {
          nodes: { node: string; status: string; connected: boolean; gpus: unknown[] }[];
        };
        const n = body.nodes.find((x) => x.node === NODE);
        return n && n.gpus.length > 0 ? n : undefined;
      },
      20_000,
      200,
    );
    expect(node).toMatchObject({ status: 'online', connected: true });
    const onDash = await waitFor(
      'the node with its GPUs on a dashboard',
      () => {
        const n = dash.nodes.get(NODE);
        return n && n.gpus.length > 0 ? n : undefined;
      },
      10_000,
    );
    expect(onDash.gpus.length).toBe(node.gpus.length);
    const points = await waitFor(
      'nvidia_smi points in InfluxDB',
      async () => {
        const r = rows(await influx.query(`SELECT * FROM "nvidia_smi" WHERE "host" = '${NODE}'`));
        return r.length > 0 ? r : undefined;
      },
      15_000,
      500,
    );
    expect(points.length).toBeGreaterThan(0);
    expect(agent.output()).toContain('connected to server');
  });
});
