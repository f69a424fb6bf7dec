/**
 * Every HTTP route × every role, real server, real HTTP. The table below is the expected role of
 * each route: a route added to app.ts without being listed here (or without a role) fails.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROLES, WhoAmISchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/access/access-file.ts';
import { type Role, roleAtLeast } from '../src/access/roles.ts';
import { SESSION_COOKIE } from '../src/access/sessions.ts';
import { accessYaml, bearer, startServerWithAccess, TOKENS, type TokenRole } from './access-helpers.ts';
import { connectAgent, report, sample, startServer, tempDir } from './helpers.ts';

/** `METHOD path` → least role. Keep in step with the route table in src/app.ts. */
const EXPECTED: Record<string, Role> = {
  'GET /api/v1/health': 'none',
  'GET /api/v1/me': 'none',
  'GET /api/v1/fleet': 'display',
  'GET /api/v1/alerts': 'display',
  'POST /api/v1/alerts/:id/ack': 'admin',
  'GET /api/v1/nodes/:name/processes': 'viewer',
  'POST /api/v1/admin/reload': 'admin',
  'GET /metrics': 'display',
  'GET /api/v1/projects': 'display',
  'GET /api/v1/projects/meta': 'display',
  'GET /api/v1/history': 'display',
  'GET /api/v1/reports/:period': 'display',
  'GET /api/v1/usage': 'display',
  'GET /api/v1/nudges': 'viewer',
  'GET /nudge/snooze': 'none',
  'POST /nudge/snooze': 'none',
  'GET /auth/*': 'none',
  'POST /auth/*': 'none',
};

/** A concrete request for each route. */
const REQUESTS: Record<string, { method: string; path: string; body?: string }> = {
  'GET /api/v1/health': { method: 'GET', path: '/api/v1/health' },
  'GET /api/v1/me': { method: 'GET', path: '/api/v1/me' },
  'GET /api/v1/fleet': { method: 'GET', path: '/api/v1/fleet' },
  'GET /api/v1/alerts': { method: 'GET', path: '/api/v1/alerts' },
  'POST /api/v1/alerts/:id/ack': { method: 'POST', path: '/api/v1/alerts/no-such-alert/ack', body: '{}' },
  'GET /api/v1/nodes/:name/processes': { method: 'GET', path: '/api/v1/nodes/node-a/processes' },
  'POST /api/v1/admin/reload': { method: 'POST', path: '/api/v1/admin/reload' },
  'GET /metrics': { method: 'GET', path: '/metrics' },
  'GET /api/v1/projects': { method: 'GET', path: '/api/v1/projects' },
  'GET /api/v1/projects/meta': { method: 'GET', path: '/api/v1/projects/meta' },
  'GET /api/v1/history': {
    method: 'GET',
    path: '/api/v1/history?scope=cluster&metrics=utilizationGpuPercent',
  },
  'GET /api/v1/reports/:period': { method: 'GET', path: '/api/v1/reports/2026-11' },
  'GET /api/v1/usage': { method: 'GET', path: '/api/v1/usage?groupBy=project' },
  'GET /api/v1/nudges': { method: 'GET', path: '/api/v1/nudges?user=kim' },
  'GET /nudge/snooze': { method: 'GET', path: '/nudge/snooze?t=not-a-link' },
  'POST /nudge/snooze': { method: 'POST', path: '/nudge/snooze' },
  'GET /auth/*': { method: 'GET', path: '/auth/login' },
  'POST /auth/*': { method: 'POST', path: '/auth/logout' },
};

const ASKERS: Array<{ role: Role; token: TokenRole | null }> = [
  { role: 'none', token: null },
  { role: 'display', token: 'display' },
  { role: 'viewer', token: 'viewer' },
  { role: 'admin', token: 'admin' },
];

describe('HTTP route table × roles', () => {
  it('every route declares methods and a role, and the table is exactly the expected one', async () => {
    const server = await startServer();
    const keys: Record<string, Role> = {};
    for (const r of server.routes) {
      expect(ROLES).toContain(r.role);
      expect(r.methods.length).toBeGreaterThan(0);
      for (const m of r.methods) keys[`${m} ${r.path}`] = r.role as Role;
    }
    expect(keys).toEqual(EXPECTED);
    expect(Object.keys(REQUESTS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it('each role gets each route only from its least role up: 401 without credentials, 403 with too low a role', async () => {
    const server = await startServerWithAccess('none');
    const agent = await connectAgent(server);
    await report(agent, { samples: [sample(1, Date.now())] });
    const rows: string[] = [];
    for (const [key, min] of Object.entries(EXPECTED)) {
      const req = REQUESTS[key]!;
      for (const asker of ASKERS) {
        const res = await fetch(server.url + req.path, {
          method: req.method,
          headers: {
            ...(asker.token ? bearer(asker.token) : {}),
            ...(req.body ? { 'content-type': 'application/json' } : {}),
          },
          body: req.body,
          redirect: 'manual',
        });
        await res.arrayBuffer();
        const allowed = roleAtLeast(asker.role, min);
        const expected = allowed ? 'through' : asker.token ? 403 : 401;
        const got = res.status === 401 || res.status === 403 ? res.status : 'through';
        rows.push(`${key} as ${asker.role}: ${got}`);
        expect(`${key} as ${asker.role}: ${got}`).toBe(`${key} as ${asker.role}: ${expected}`);
        if (res.status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    expect(rows).toHaveLength(Object.keys(EXPECTED).length * ASKERS.length);
  });

  it('an unknown token is 401 with invalid_token, never the anonymous role', async () => {
    const server = await startServerWithAccess('viewer');
    const res = await fetch(`${server.url}/api/v1/fleet`, {
      headers: { authorization: 'Bearer nope-not-a-token' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('invalid_token');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });

  it('/api/v1/me says who is asking; /api/v1/health tells role none nothing but up/version', async () => {
    const server = await startServerWithAccess('none');
    const me = async (h: Record<string, string> = {}) =>
      WhoAmISchema.parse(await (await fetch(`${server.url}/api/v1/me`, { headers: h })).json());
    expect(await me()).toEqual({
      role: 'none',
      user: null,
      name: null,
      via: 'anonymous',
      loginAvailable: false,
    });
    expect(await me(bearer('viewer'))).toEqual({
      role: 'viewer',
      user: 'kim',
      name: 'kim',
      via: 'token',
      loginAvailable: false,
    });
    expect((await me(bearer('admin'))).role).toBe('admin');
    const anon = (await (await fetch(`${server.url}/api/v1/health`)).json()) as Record<string, unknown>;
    expect(Object.keys(anon).sort()).toEqual(['protocolVersion', 'status', 'version']);
    const full = (await (
      await fetch(`${server.url}/api/v1/health`, { headers: bearer('display') })
    ).json()) as Record<string, unknown>;
    expect(full).toHaveProperty('storage');
    expect(full).toHaveProperty('nodes');
  });

  it('/metrics: open to GPUPULSE_METRICS_FROM addresses without credentials, refused elsewhere', async () => {
    const open = await startServerWithAccess('none', { config: { metricsFrom: ['127.0.0.0/8'] } });
    expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
    const closed = await startServerWithAccess('none', { config: { metricsFrom: ['10.1.2.0/24'] } });
    expect((await fetch(`${closed.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${closed.url}/metrics`, { headers: bearer('display') })).status).toBe(200);
  });

  it('processes: display 403; a viewer sees every process but command lines and env only of their own, marked; admin all', async () => {
    const server = await startServerWithAccess('display');
    const agent = await connectAgent(server, { node: 'gpu-01' });
    const s = sample(1, Date.now());
    const uuid = s.gpus[0]!.uuid;
    s.processes = [
      {
        gpuUuid: uuid,
        pid: 10,
        usedMemoryMiB: 100,
        name: 'python',
        user: 'kim',
        cmdline: 'python kim.py',
        env: { PROJECT: 'a' },
      },
      {
        gpuUuid: uuid,
        pid: 11,
        usedMemoryMiB: 100,
        name: 'python',
        user: 'lee',
        cmdline: 'python lee.py --api-key=LEE',
        env: { PROJECT: 'b' },
      },
    ];
    await report(agent, { samples: [s] });
    const get = (h: Record<string, string> = {}) =>
      fetch(`${server.url}/api/v1/nodes/gpu-01/processes`, { headers: h });
    // Anonymous (display) without credentials: 401, sign in; a display token: 403.
    expect((await get()).status).toBe(401);
    expect((await get(bearer('display'))).status).toBe(403);
    type P = {
      pid: number;
      user: string;
      cmdline?: string;
      env?: Record<string, string>;
      redacted?: string[];
    };
    const viewer = ((await (await get(bearer('viewer'))).json()) as { processes: P[] }).processes;
    expect(viewer.map((p) => p.pid)).toEqual([10, 11]);
    expect(viewer[0]).toMatchObject({ user: 'kim', cmdline: 'python kim.py', env: { PROJECT: 'a' } });
    expect(viewer[0]!.redacted).toBeUndefined();
    expect(viewer[1]).toMatchObject({ user: 'lee', redacted: ['cmdline', 'env'] });
    expect(viewer[1]).not.toHaveProperty('cmdline');
    expect(viewer[1]).not.toHaveProperty('env');
    const admin = ((await (await get(bearer('admin'))).json()) as { processes: P[] }).processes;
    expect(admin[1]).toMatchObject({ cmdline: 'python lee.py --api-key=LEE' });
    expect(admin.every((p) => p.redacted === undefined)).toBe(true);
  });

  it('display gets no users or jobs from /api/v1/fleet and /api/v1/projects; usage by user needs viewer', async () => {
    const server = await startServerWithAccess('display');
    const agent = await connectAgent(server, { node: 'gpu-01' });
    const s = sample(1, Date.now());
    s.processes = [
      {
        gpuUuid: s.gpus[0]!.uuid,
        pid: 10,
        usedMemoryMiB: 100,
        name: 'python',
        user: 'secretuser',
        slurmJobId: '777123',
      },
    ];
    await report(agent, { samples: [s] });
    server.usage.update();
    for (const path of ['/api/v1/fleet', '/api/v1/projects']) {
      const asDisplay = await (await fetch(server.url + path)).text();
      expect(asDisplay).not.toContain('secretuser');
      expect(asDisplay).not.toContain('777123');
      expect(asDisplay).not.toMatch(/"users"|"jobs"/);
      const asViewer = await (await fetch(server.url + path, { headers: bearer('viewer') })).text();
      expect(asViewer).toContain('secretuser');
    }
    expect((await fetch(`${server.url}/api/v1/usage?groupBy=user`)).status).toBe(403);
    expect(
      (await fetch(`${server.url}/api/v1/usage?groupBy=user`, { headers: bearer('viewer') })).status,
    ).toBe(200);
  });

  it('admin: reload and alert acknowledgement with a silence, each with an audit line', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const server = await startServerWithAccess('display', { logger });
    const reload = await fetch(`${server.url}/api/v1/admin/reload`, {
      method: 'POST',
      headers: bearer('admin'),
    });
    expect(reload.status).toBe(200);
    expect(await reload.json()).toMatchObject({ access: { error: null }, projects: { error: null } });
    expect(lines.find((l) => l.component === 'audit' && l.action === 'admin.reload')).toMatchObject({
      who: 'ops',
      role: 'admin',
    });

    // A firing alert: an offline node.
    const agent = await connectAgent(server, { node: 'gpu-07' });
    await report(agent, { samples: [sample(1, Date.now(), { gpus: [] })] });
    server.alerts.recordEvents('gpu-07', [
      { kind: 'xid', gpuUuid: null, code: 79, message: 'fell off the bus', ts: Date.now() },
    ]);
    server.alerts.tick();
    const list = server.alerts.list({ state: 'firing' }).alerts;
    expect(list.length).toBeGreaterThan(0);
    const id = list[0]!.id;
    const bad = await fetch(`${server.url}/api/v1/alerts/${encodeURIComponent(id)}/ack`, {
      method: 'POST',
      headers: { ...bearer('admin'), 'content-type': 'application/json' },
      body: '{"silence":"forever"}',
    });
    expect(bad.status).toBe(400);
    const ack = await fetch(`${server.url}/api/v1/alerts/${encodeURIComponent(id)}/ack`, {
      method: 'POST',
      headers: { ...bearer('admin'), 'content-type': 'application/json' },
      body: '{"silence":"2h"}',
    });
    expect(ack.status).toBe(200);
    const acked = (await ack.json()) as { acknowledged: { by: string; silencedUntil: number } };
    expect(acked.acknowledged.by).toBe('ops');
    expect(acked.acknowledged.silencedUntil).toBeGreaterThan(Date.now() + 7_000_000);
    expect(lines.find((l) => l.component === 'audit' && l.action === 'alert.ack')).toMatchObject({
      who: 'ops',
      alert: id,
    });
    // Display sees the acknowledgement but not who made it.
    const asDisplay = (await (await fetch(`${server.url}/api/v1/alerts`)).json()) as {
      alerts: Array<{ id: string; acknowledged?: { by: string | null } }>;
    };
    expect(asDisplay.alerts.find((a) => a.id === id)?.acknowledged?.by).toBeNull();
    expect(
      (await fetch(`${server.url}/api/v1/alerts/nope/ack`, { method: 'POST', headers: bearer('admin') }))
        .status,
    ).toBe(404);
  });

  it('admin reload: new alert rules take effect, a broken alerts file keeps the old ones and says why', async () => {
    const dir = await tempDir();
    const alertsFile = join(dir, 'alerts.yaml');
    await writeFile(alertsFile, 'rules:\n  - id: gpu_temperature_high\n    threshold: 80\n');
    const server = await startServerWithAccess('display', { config: { alertsFile } });
    const before = server.alerts.engine.ruleIds.length;
    await writeFile(alertsFile, 'rules:\n  - id: gpu_temperature_high\n    enabled: false\n');
    const reload = () =>
      fetch(`${server.url}/api/v1/admin/reload`, { method: 'POST', headers: bearer('admin') }).then(
        (r) => r.json() as Promise<{ alerts: { reloaded: boolean; rules?: number; error: string | null } }>,
      );
    const ok = await reload();
    expect(ok.alerts).toMatchObject({ reloaded: true, rules: before - 1, error: null });
    expect(server.alerts.engine.ruleIds).not.toContain('gpu_temperature_high');
    await writeFile(alertsFile, 'rules:\n  - id: gpu_temperature_high\n    threshold: hot\n');
    const bad = await reload();
    expect(bad.alerts.reloaded).toBe(false);
    expect(bad.alerts.error).toMatch(/threshold/);
    expect(server.alerts.engine.ruleIds).toHaveLength(before - 1);
  });

  it('a cookie-authenticated POST must pass the Origin check; a foreign Origin is refused', async () => {
    const server = await startServerWithAccess('display');
    const kiosk = await fetch(`${server.url}/?access_token=${TOKENS.admin}`, { redirect: 'manual' });
    const cookie = kiosk.headers.get('set-cookie')!.split(';')[0]!;
    expect(cookie.startsWith(`${SESSION_COOKIE}=`)).toBe(true);
    const post = (origin?: string) =>
      fetch(`${server.url}/api/v1/admin/reload`, {
        method: 'POST',
        headers: { cookie, ...(origin ? { origin } : {}) },
      });
    expect((await post('http://evil.example')).status).toBe(403);
    expect((await post()).status).toBe(403);
    expect((await post(server.url)).status).toBe(200);
    // A bearer token (not a browser's ambient credential) needs no Origin.
    expect(
      (await fetch(`${server.url}/api/v1/admin/reload`, { method: 'POST', headers: bearer('admin') })).status,
    ).toBe(200);
  });

  it('kiosk: ?access_token= swaps a valid token for a session cookie and drops it from the URL; a bad one gets no cookie', async () => {
    const server = await startServerWithAccess('none');
    const good = await fetch(`${server.url}/wall?kiosk=1&access_token=${TOKENS.display}&lang=ko`, {
      redirect: 'manual',
    });
    expect(good.status).toBe(303);
    expect(good.headers.get('location')).toBe('/wall?kiosk=1&lang=ko');
    const setCookie = good.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/);
    expect(setCookie).toMatch(/Max-Age=\d{8}/);
    const cookie = setCookie.split(';')[0]!;
    expect((await fetch(`${server.url}/api/v1/fleet`, { headers: { cookie } })).status).toBe(200);
    const me = (await (await fetch(`${server.url}/api/v1/me`, { headers: { cookie } })).json()) as {
      role: string;
      via: string;
    };
    expect(me).toMatchObject({ role: 'display', via: 'session' });

    const bad = await fetch(`${server.url}/?kiosk=1&access_token=wrong`, { redirect: 'manual' });
    expect(bad.status).toBe(303);
    expect(bad.headers.get('location')).toBe('/?kiosk=1');
    expect(bad.headers.get('set-cookie')).toBeNull();

    // Revoking the token (removing it from the file) ends the session.
    await writeFile(server.accessFile, accessYaml('none').replace(/.*wall-1.*\n/, ''));
    expect(server.access.reload()).toBe(true);
    const after = await fetch(`${server.url}/api/v1/fleet`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { message: string } }).error.message).toMatch(/revoked/);
    // The next page load drops the dead cookie (the wall is then anonymous, here: role none).
    const page = await fetch(`${server.url}/wall`, { headers: { cookie } });
    expect(page.headers.get('set-cookie')).toMatch(/^gpupulse_session=; Max-Age=0/);
  });

  it('sessions survive a restart (key in the data dir)', async () => {
    const dataDir = await tempDir();
    const { writeAccessFile } = await import('./access-helpers.ts');
    const accessFile = await writeAccessFile(accessYaml('none'));
    const first = await startServer({ config: { accessFile, dataDir } });
    const res = await fetch(`${first.url}/?access_token=${TOKENS.viewer}`, { redirect: 'manual' });
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    await first.close();
    const second = await startServer({ config: { accessFile, dataDir } });
    expect((await fetch(`${second.url}/api/v1/fleet`, { headers: { cookie } })).status).toBe(200);
  });

  it('trusted proxy headers count only from the listed addresses', async () => {
    const proxy = (from: string) =>
      `trustedProxy: { userHeader: X-Forwarded-User, groupsHeader: X-Forwarded-Groups, from: [${from}], roles: { admin: [ops], viewer: ["*"] } }`;
    const headers = { 'x-forwarded-user': 'kim', 'x-forwarded-groups': 'ops,users' };
    const elsewhere = await startServerWithAccess('none', {}, proxy('10.9.9.9/32'));
    const ignored = (await (await fetch(`${elsewhere.url}/api/v1/me`, { headers })).json()) as {
      role: string;
      via: string;
    };
    expect(ignored).toMatchObject({ role: 'none', via: 'anonymous' });
    expect((await fetch(`${elsewhere.url}/api/v1/fleet`, { headers })).status).toBe(401);
    const local = await startServerWithAccess('none', {}, proxy('127.0.0.1/32'));
    const me = (await (await fetch(`${local.url}/api/v1/me`, { headers })).json()) as Record<string, unknown>;
    expect(me).toMatchObject({ role: 'admin', user: 'kim', via: 'proxy' });
    const viewer = (await (
      await fetch(`${local.url}/api/v1/me`, { headers: { 'x-forwarded-user': 'lee' } })
    ).json()) as Record<string, unknown>;
    expect(viewer).toMatchObject({ role: 'viewer', user: 'lee' });
  });

  it('a bad access file at start stops the server with the line; a bad reload keeps the last good one', async () => {
    const { writeAccessFile } = await import('./access-helpers.ts');
    const broken = await writeAccessFile(
      'anonymous: display\ntokens:\n  - { name: x, role: boss, sha256: "00" }\n',
    );
    await expect(startServer({ config: { accessFile: broken } })).rejects.toThrow(
      /access\.yaml:3: tokens\[0\]\.role/,
    );

    const server = await startServerWithAccess('none');
    await writeFile(
      server.accessFile,
      `${accessYaml('none')}\n  - { name: typo, role: viewer, sha256: "${sha256Hex('x').slice(0, 10)}" }\n`,
    );
    expect(server.access.reload()).toBe(false);
    expect(server.access.error).toMatch(/access\.yaml:\d+: tokens\[3\]\.sha256: must be the 64 hex digits/);
    expect(server.access.error).not.toContain(sha256Hex('x').slice(0, 10));
    expect((await fetch(`${server.url}/api/v1/fleet`, { headers: bearer('viewer') })).status).toBe(200);
  });
});
