import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from './config.ts';

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
});
