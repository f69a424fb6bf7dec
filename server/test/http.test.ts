import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { HealthSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { bearer, startServerWithAccess } from './access-helpers.ts';
import { connectAgent, report, sample, startServer, tempDir } from './helpers.ts';

/** Raw GET (fetch would normalise `..` away). */
function rawGet(
  url: string,
  path: string,
): Promise<{ status: number; type: string | undefined; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function webDir(): Promise<string> {
  const root = await tempDir('gpupulse-web-');
  const dir = join(root, 'dist');
  await mkdir(join(dir, 'assets'), { recursive: true });
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>app</title>');
  await writeFile(join(dir, 'assets', 'app-1234.js'), 'console.log(1)');
  await writeFile(join(dir, 'assets', 'app-1234.css'), 'body{}');
  await writeFile(join(root, 'secret.txt'), 'top secret');
  return dir;
}

describe('HTTP', () => {
  it('serves health (degraded on the memory store) with security headers', async () => {
    const server = await startServer();
    const res = await fetch(`${server.url}/api/v1/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = HealthSchema.parse(await res.json());
    expect(body.status).toBe('degraded');
    expect(body.storage).toMatchObject({
      kind: 'memory',
      ok: true,
      warning: expect.stringMatching(/in-memory/),
      warningCode: 'memory',
    });
  });

  it('answers JSON 404 for unknown API paths and 405 for other methods', async () => {
    const server = await startServer();
    const res = await fetch(`${server.url}/api/v1/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const post = await fetch(`${server.url}/api/v1/health`, { method: 'POST' });
    expect(post.status).toBe(405);
  });

  it('serves Prometheus metrics from its own registry', async () => {
    const server = await startServer();
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    for (const name of [
      'gpupulse_agents_connected',
      'gpupulse_dashboards_connected',
      'gpupulse_samples_received_total',
      'gpupulse_storage_write_batches_total',
      'gpupulse_storage_write_duration_seconds_bucket',
      'gpupulse_write_buffer_points',
      'gpupulse_storage_points_dropped_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('lists a node’s processes with their attribution; 404 for an unknown node', async () => {
    const server = await startServerWithAccess('display');
    const node = 'n "1" <b>/x';
    const agent = await connectAgent(server, { node });
    const s = sample(1, Date.now());
    const uuid = s.gpus[1]!.uuid;
    s.processes = [
      {
        gpuUuid: uuid,
        pid: 20,
        usedMemoryMiB: 3000,
        name: 'python',
        user: 'kim',
        cmdline: 'python train.py',
      },
      { gpuUuid: uuid, pid: 21, usedMemoryMiB: 1000, name: 'python', user: 'lee' },
    ];
    await report(agent, { samples: [s] });
    const res = await fetch(`${server.url}/api/v1/nodes/${encodeURIComponent(node)}/processes`, {
      headers: bearer('admin'),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      node: string;
      processes: Array<{ pid: number; gpuIndex: number; project: string; share: number; cmdline?: string }>;
    };
    expect(body.node).toBe(node);
    expect(body.processes.map((p) => [p.pid, p.gpuIndex, p.project, p.share])).toEqual([
      [20, 1, 'unassigned', 0.75],
      [21, 1, 'unassigned', 0.25],
    ]);
    expect(body.processes[0]?.cmdline).toBe('python train.py');
    expect(
      (await fetch(`${server.url}/api/v1/nodes/nope/processes`, { headers: bearer('admin') })).status,
    ).toBe(404);
    expect((await fetch(`${server.url}/api/v1/nodes/%E0%A4%A/processes`)).status).toBe(400);
  });

  it('serves the built web app with content types, SPA fallback and refuses traversal', async () => {
    const dir = await webDir();
    const server = await startServer({ config: { webDir: dir } });
    const index = await rawGet(server.url, '/');
    expect(index).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(index.body).toContain('<title>app</title>');
    expect(await rawGet(server.url, '/assets/app-1234.js')).toMatchObject({
      status: 200,
      type: 'text/javascript; charset=utf-8',
    });
    expect(await rawGet(server.url, '/assets/app-1234.css')).toMatchObject({
      status: 200,
      type: 'text/css; charset=utf-8',
    });
    const spa = await rawGet(server.url, '/nodes/gpu-01');
    expect(spa.status).toBe(200);
    expect(spa.body).toContain('<title>app</title>');
    expect((await rawGet(server.url, '/assets/missing.js')).status).toBe(404);
    for (const path of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/a%00.js',
    ]) {
      const res = await rawGet(server.url, path);
      expect(res.status, path).toBe(400);
      expect(res.body).not.toContain('top secret');
    }
  });

  it('says how to build the web app when it is not built', async () => {
    const dir = await tempDir();
    const server = await startServer({ config: { webDir: join(dir, 'nothing') } });
    const res = await rawGet(server.url, '/');
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/pnpm build/);
  });
});
