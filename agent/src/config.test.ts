import { mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDuration, parseSize, resolveConfig } from './config.ts';

describe('resolveConfig', () => {
  it('defaults', () => {
    const c = resolveConfig({ once: true }, {});
    expect(c).toMatchObject({ node: os.hostname(), intervalMs: 1000, nvidiaSmi: 'nvidia-smi', once: true });
  });
  it('env, with flags winning over env', () => {
    const env = {
      GPUPULSE_SERVER: 'http://env:1',
      GPUPULSE_TOKEN: 't-env',
      GPUPULSE_NODE: 'node-env',
      GPUPULSE_INTERVAL_MS: '2000',
      GPUPULSE_NVIDIA_SMI: '/env/nvidia-smi',
      GPUPULSE_SPOOL_DIR: '/var/spool/env',
    };
    expect(resolveConfig({}, env)).toMatchObject({
      server: 'http://env:1',
      token: 't-env',
      node: 'node-env',
      intervalMs: 2000,
      nvidiaSmi: '/env/nvidia-smi',
      spoolDir: '/var/spool/env',
    });
    expect(resolveConfig({ server: 'http://flag:2', interval: '500', node: 'n1' }, env)).toMatchObject({
      server: 'http://flag:2',
      intervalMs: 500,
      node: 'n1',
      token: 't-env',
    });
  });
  it('clear errors naming the flag and the env variable', () => {
    expect(() => resolveConfig({}, {})).toThrow(/--server \(GPUPULSE_SERVER\): is required unless --once/);
    expect(() => resolveConfig({ server: 'http://x' }, {})).toThrow(/--token \(GPUPULSE_TOKEN\)/);
    expect(() => resolveConfig({ once: true, interval: 'fast' }, {})).toThrow(ConfigError);
    expect(() => resolveConfig({ once: true, interval: '10' }, {})).toThrow(/--interval .*at least 100/);
    expect(() => resolveConfig({ once: true, node: 'bad\nname' }, {})).toThrow(/--node/);
  });

  it('defaults of the new settings', () => {
    const c = resolveConfig({ once: true }, {});
    expect(c).toMatchObject({
      spoolMaxBytes: 256 * 1024 * 1024,
      spoolMaxAgeMs: 24 * 3600_000,
      projectEnv: ['GPUPULSE_PROJECT', 'PROJECT'],
      kmsg: '/dev/kmsg',
      check: false,
    });
  });
  it('sizes and durations', () => {
    expect(parseSize('256MiB')).toBe(256 * 1024 * 1024);
    expect(parseSize('1GB')).toBe(1e9);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('lots')).toBeNull();
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('90m')).toBe(5_400_000);
    expect(parseDuration('3600')).toBe(3_600_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(() => resolveConfig({ once: true, spoolMaxBytes: 'huge' }, {})).toThrow(
      /--spool-max-bytes \(GPUPULSE_SPOOL_MAX_BYTES\)/,
    );
    expect(() => resolveConfig({ once: true, projectEnv: 'OK,not ok' }, {})).toThrow(/--project-env/);
  });
  it('config file (YAML or JSON): flags > env > file > defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-config-'));
    const yaml = join(dir, 'agent.yaml');
    writeFileSync(
      yaml,
      'server: http://file:8080\ntoken: t-file\nnode: node-file\nintervalMs: 5000\nspoolDir: /var/spool/file\nspoolMaxBytes: 1GiB\nspoolMaxAge: 12h\nprojectEnv: [LAB_PROJECT, PROJECT]\n',
    );
    const fromFile = resolveConfig({ config: yaml }, {});
    expect(fromFile).toMatchObject({
      server: 'http://file:8080',
      token: 't-file',
      node: 'node-file',
      intervalMs: 5000,
      spoolMaxBytes: 1024 ** 3,
      spoolMaxAgeMs: 12 * 3600_000,
      projectEnv: ['LAB_PROJECT', 'PROJECT'],
      configFile: yaml,
    });
    const env = { GPUPULSE_CONFIG: yaml, GPUPULSE_NODE: 'node-env', GPUPULSE_INTERVAL_MS: '2000' };
    expect(resolveConfig({ interval: '700' }, env)).toMatchObject({
      node: 'node-env',
      intervalMs: 700,
      token: 't-file',
    });
    const json = join(dir, 'agent.json');
    writeFileSync(json, JSON.stringify({ server: 'http://json:1', token: 'j', kmsg: 'off' }));
    expect(resolveConfig({ config: json }, {})).toMatchObject({ server: 'http://json:1', kmsg: 'off' });
    writeFileSync(json, JSON.stringify({ sever: 'typo' }));
    expect(() => resolveConfig({ config: json }, {})).toThrow(/unknown key\(s\) sever/);
    expect(() => resolveConfig({ config: join(dir, 'missing.yaml') }, {})).toThrow(/cannot read/);
  });

  it('--server takes several URLs in failover order (flag, env, or a list in the config file)', () => {
    const c = resolveConfig({ server: 'http://a:8080, https://b:8443/', token: 't' }, {});
    expect(c.server).toBe('http://a:8080');
    expect(c.servers).toEqual(['http://a:8080', 'https://b:8443']);
    expect(
      resolveConfig({}, { GPUPULSE_SERVER: 'http://e1:1,http://e2:2', GPUPULSE_TOKEN: 't' }).servers,
    ).toEqual(['http://e1:1', 'http://e2:2']);
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-config-'));
    const yaml = join(dir, 'agent.yaml');
    writeFileSync(yaml, 'server: [http://f1:1, http://f2:2]\ntoken: t\nca: /etc/gpupulse/ca.pem\n');
    expect(resolveConfig({ config: yaml }, {})).toMatchObject({
      server: 'http://f1:1',
      servers: ['http://f1:1', 'http://f2:2'],
      ca: '/etc/gpupulse/ca.pem',
    });
    expect(resolveConfig({ once: true }, {}).servers).toEqual([]);
  });

  it('a bad URL or a duplicate in the server list names --server', () => {
    expect(() => resolveConfig({ server: 'http://a:1,not a url', token: 't' }, {})).toThrow(
      /--server \(GPUPULSE_SERVER\): server must be a URL/,
    );
    expect(() => resolveConfig({ server: 'http://a:1,ftp://b:2', token: 't' }, {})).toThrow(
      /--server \(GPUPULSE_SERVER\): server must start with http/,
    );
    expect(() => resolveConfig({ server: 'http://a:1,http://a:1/', token: 't' }, {})).toThrow(
      /--server \(GPUPULSE_SERVER\): a server is listed twice/,
    );
    expect(() => resolveConfig({ server: ' , ', token: 't' }, {})).toThrow(/--server .*at least one URL/);
  });

  it('--ca from the flag or GPUPULSE_CA', () => {
    expect(resolveConfig({ once: true, ca: '/x/ca.pem' }, { GPUPULSE_CA: '/env/ca.pem' }).ca).toBe(
      '/x/ca.pem',
    );
    expect(resolveConfig({ once: true }, { GPUPULSE_CA: '/env/ca.pem' }).ca).toBe('/env/ca.pem');
    expect(resolveConfig({ once: true }, {}).ca).toBeUndefined();
  });
});
