import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AccessFileError,
  AccessRegistry,
  AddressList,
  DEFAULT_ACCESS,
  findBySecret,
  parseAccessFile,
  sha256Hex,
} from '../src/access/access-file.ts';
import { resolveRequest } from '../src/access/principal.ts';
import { redactNodes, redactPatches, redactProjectsUsage } from '../src/access/redact.ts';
import { roleForGroups } from '../src/access/roles.ts';
import { SessionSigner } from '../src/access/sessions.ts';
import { type ConfigError, loadConfig } from '../src/config.ts';
import { tempDir } from './helpers.ts';

const examples = join(import.meta.dirname, '../../examples/access.yaml');

describe('access file', () => {
  it('the example file is valid', () => {
    const c = parseAccessFile(readFileSync(examples, 'utf8'), 'access.yaml');
    expect(c.anonymous).toBe('display');
    expect(c.tokens.map((t) => t.role)).toEqual(['display', 'viewer', 'viewer', 'admin']);
    expect(c.agents[0]!.nodes).toEqual(['gpu-a-*']);
  });

  it.each([
    ['anonymous: admin\n', /access\.yaml:1: anonymous:/],
    [
      'tokens:\n  - { name: a, role: viewer, sha256: "abc" }\n',
      /access\.yaml:2: tokens\[0\]\.sha256: must be the 64 hex/,
    ],
    ['tokens:\n  - { name: a, role: viewer }\n', /access\.yaml:2: tokens\[0\]\.sha256/],
    ['nope: 1\n', /access\.yaml:1: nope: unknown key "nope"/],
    ['tokens: [\n', /access\.yaml:\d+: invalid YAML\/JSON/],
    [
      `tokens:\n  - { name: a, role: viewer, sha256: "${sha256Hex('t')}" }\nagents:\n  - { name: b, sha256: "${sha256Hex('t')}", nodes: [x] }\n`,
      /access\.yaml:4: agents\[0\]\.sha256: the same token is listed twice/,
    ],
    [
      'trustedProxy: { userHeader: X-User, from: [300.1.1.1/8] }\n',
      /access\.yaml:1: trustedProxy\.from\[0\]/,
    ],
    [
      'agents:\n  - { name: b, sha256: "' + sha256Hex('q') + '", nodes: [] }\n',
      /agents\[0\]\.nodes: must name at least one/,
    ],
  ])('a bad file names the line and key path: %s', (text, message) => {
    expect(() => parseAccessFile(text, 'access.yaml')).toThrow(AccessFileError);
    expect(() => parseAccessFile(text, 'access.yaml')).toThrow(message);
  });

  it('finds a token by its digest in constant time over all entries, never by a prefix', () => {
    const entries = [{ sha256: sha256Hex('one') }, { sha256: sha256Hex('two') }];
    expect(findBySecret(entries, 'two')).toBe(entries[1]);
    expect(findBySecret(entries, 'tw')).toBeNull();
    expect(findBySecret([], 'two')).toBeNull();
  });

  it('CIDR lists: IPv4, IPv6, mapped IPv4, bare addresses', () => {
    const l = new AddressList(['10.0.0.0/8', '::1/128', '192.168.1.7']);
    expect(l.has('10.2.3.4')).toBe(true);
    expect(l.has('::ffff:10.2.3.4')).toBe(true);
    expect(l.has('::1')).toBe(true);
    expect(l.has('192.168.1.7')).toBe(true);
    expect(l.has('192.168.1.8')).toBe(false);
    expect(l.has('11.0.0.1')).toBe(false);
    expect(l.has(undefined)).toBe(false);
  });

  it('groups map to the highest listed role; "*" is any signed-in user', () => {
    expect(roleForGroups({ admin: ['ops'], viewer: ['*'] }, ['ops'])).toBe('admin');
    expect(roleForGroups({ admin: ['ops'], viewer: ['*'] }, [])).toBe('viewer');
    expect(roleForGroups({ admin: ['ops'] }, ['users'])).toBeNull();
  });

  it('registry: hot reload by watch; a bad reload keeps the last good config and says why with the line', async () => {
    const dir = await tempDir();
    const file = join(dir, 'access.yaml');
    await writeFile(
      file,
      `anonymous: none\ntokens:\n  - { name: a, role: viewer, sha256: "${sha256Hex('A')}" }\n`,
    );
    const reg = new AccessRegistry({ file, pollMs: 0, debounceMs: 20 });
    reg.start();
    try {
      expect(reg.current.tokens.map((t) => t.name)).toEqual(['a']);
      const changed = new Promise<void>((r) => reg.onChange(() => r()));
      await writeFile(
        file,
        `anonymous: display\ntokens:\n  - { name: b, role: admin, sha256: "${sha256Hex('B')}" }\n`,
      );
      await changed;
      expect(reg.current.anonymous).toBe('display');
      expect(reg.current.tokens.map((t) => t.name)).toEqual(['b']);
      await writeFile(file, 'anonymous: display\ntokens:\n  - { name: c, role: root, sha256: "x" }\n');
      expect(reg.reload()).toBe(false);
      expect(reg.error).toMatch(/access\.yaml:3: tokens\[0\]\.role/);
      expect(reg.current.tokens.map((t) => t.name)).toEqual(['b']);
    } finally {
      reg.close();
    }
  });

  it('no file: anonymous display, no tokens; a file that fails on first load gives role none', async () => {
    expect(new AccessRegistry({ file: null }).current).toBe(DEFAULT_ACCESS);
    const dir = await tempDir();
    const file = join(dir, 'access.yaml');
    await writeFile(file, 'anonymous: [\n');
    const reg = new AccessRegistry({ file });
    expect(reg.reload()).toBe(false);
    expect(reg.current.anonymous).toBe('none');
  });
});

describe('sessions and principals', () => {
  it('a signed session verifies; a tampered or expired one does not; the key survives reopening', async () => {
    const dir = await tempDir();
    const a = SessionSigner.open(dir);
    const v = a.issue({ via: 'token', name: 'w', user: null, tokenName: 'w', iat: 1, exp: null });
    expect(SessionSigner.open(dir).verify(v)).toMatchObject({ tokenName: 'w' });
    const [body, mac] = v.split('.');
    const forged = Buffer.from(
      JSON.stringify({ via: 'token', name: 'x', user: null, tokenName: 'ops', iat: 1, exp: null }),
    ).toString('base64url');
    expect(a.verify(`${forged}.${mac}`)).toBeNull();
    expect(a.verify(`${body}.${mac}x`)).toBeNull();
    const exp = a.issue({ via: 'oidc', name: 'k', user: 'k', role: 'viewer', iat: 1, exp: Date.now() - 1 });
    expect(a.verify(exp)).toBeNull();
    expect(SessionSigner.open(await tempDir()).verify(v)).toBeNull();
  });

  it('oidc sessions take their role from the current mapping of their groups', () => {
    const signer = SessionSigner.withKey(Buffer.alloc(32, 7));
    const access = parseAccessFile(
      'anonymous: none\noidc: { issuer: "https://sso.example", clientId: g, roles: { admin: [ops], viewer: ["*"] } }\n',
    );
    const cookie = `gpupulse_session=${signer.issue({ via: 'oidc', name: 'Kim', user: 'kim', groups: ['ops'], role: 'viewer', iat: 1, exp: Date.now() + 60_000 })}`;
    const r = resolveRequest({ headers: { cookie }, remoteAddress: '127.0.0.1' }, access, signer);
    expect(r.principal).toEqual({ role: 'admin', user: 'kim', name: 'Kim', via: 'oidc' });
    const noSso = parseAccessFile('anonymous: none\n');
    expect(resolveRequest({ headers: { cookie }, remoteAddress: '127.0.0.1' }, noSso, signer)).toMatchObject({
      principal: { role: 'none' },
      error: expect.stringMatching(/no longer configured/),
    });
  });
});

describe('redaction', () => {
  const node = {
    node: 'n',
    status: 'online' as const,
    connected: true,
    lastSeen: 1,
    lastSampleTs: 1,
    gpuCollector: 'ok' as const,
    gpuError: null,
    host: null,
    gpus: [{ index: 0, uuid: 'u', name: 'g', project: 'p', users: ['kim'], jobs: ['42'] }],
  };

  it('display loses users and jobs in views, patches and usage; the originals are untouched', () => {
    // biome-ignore lint/suspicious/noExplicitAny: a partial GPU view is enough here
    const nodes = [node as any];
    const out = redactNodes(nodes, 'display');
    expect(out[0]!.gpus[0]).not.toHaveProperty('users');
    expect(out[0]!.gpus[0]).not.toHaveProperty('jobs');
    expect(node.gpus[0]!.users).toEqual(['kim']);
    expect(redactNodes(nodes, 'viewer')).toBe(nodes);
    const patches = redactPatches(
      [
        { node: 'n', gpus: [{ index: 0, users: ['kim'] }] },
        { node: 'm', lastSeen: 2, gpus: [{ index: 0, jobs: ['1'], utilizationGpuPercent: 5 }] },
      ],
      'display',
    );
    expect(patches).toEqual([{ node: 'm', lastSeen: 2, gpus: [{ index: 0, utilizationGpuPercent: 5 }] }]);
    const usage = redactProjectsUsage(
      // biome-ignore lint/suspicious/noExplicitAny: only the keys that matter
      { serverTime: 1, cluster: {} as any, projects: [{ project: 'p', users: ['kim'], jobs: ['1'] } as any] },
      'display',
    );
    expect(usage.projects[0]).toEqual({ project: 'p' });
  });
});

describe('access settings in the environment', () => {
  it('reads GPUPULSE_ACCESS_FILE, METRICS_FROM, MAX_DASHBOARDS, ALLOWED_ORIGINS, HOST, TLS and PUBLIC_URL', () => {
    const c = loadConfig(
      {
        GPUPULSE_ACCESS_FILE: 'access.yaml',
        GPUPULSE_METRICS_FROM: '10.0.0.0/8, ::1/128',
        GPUPULSE_MAX_DASHBOARDS: '20',
        GPUPULSE_ALLOWED_ORIGINS: 'https://wall.example.org',
        GPUPULSE_HOST: '127.0.0.1',
        GPUPULSE_TLS_CERT: 'c.pem',
        GPUPULSE_TLS_KEY: 'k.pem',
        GPUPULSE_PUBLIC_URL: 'https://gpupulse.example.org/',
      },
      '/srv',
    );
    expect(c).toMatchObject({
      accessFile: '/srv/access.yaml',
      metricsFrom: ['10.0.0.0/8', '::1/128'],
      maxDashboards: 20,
      allowedOrigins: ['https://wall.example.org'],
      host: '127.0.0.1',
      tls: { certFile: '/srv/c.pem', keyFile: '/srv/k.pem' },
      publicUrl: 'https://gpupulse.example.org',
    });
    expect(loadConfig({})).toMatchObject({
      accessFile: null,
      metricsFrom: [],
      maxDashboards: 500,
      tls: null,
    });
  });

  it('refuses bad values, naming each', () => {
    let issues: string[] = [];
    try {
      loadConfig({
        GPUPULSE_METRICS_FROM: '10.0.0.0/99',
        GPUPULSE_MAX_DASHBOARDS: '0',
        GPUPULSE_ALLOWED_ORIGINS: 'https://x.example/path',
        GPUPULSE_TLS_CERT: 'c.pem',
      });
    } catch (err) {
      issues = (err as ConfigError).issues;
    }
    expect(issues.join('\n')).toMatch(/GPUPULSE_MAX_DASHBOARDS must be >= 1/);
    try {
      loadConfig({
        GPUPULSE_METRICS_FROM: '10.0.0.0/99',
        GPUPULSE_ALLOWED_ORIGINS: 'https://x.example/path',
        GPUPULSE_TLS_CERT: 'c.pem',
      });
    } catch (err) {
      issues = (err as ConfigError).issues;
    }
    expect(issues).toEqual([
      expect.stringMatching(/^GPUPULSE_METRICS_FROM: 10\.0\.0\.0\/99: prefix length/),
      expect.stringMatching(/GPUPULSE_ALLOWED_ORIGINS/),
      expect.stringMatching(/GPUPULSE_TLS_CERT and GPUPULSE_TLS_KEY/),
    ]);
  });
});
