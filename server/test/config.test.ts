import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_WEB_DIR, loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('has documented defaults', () => {
    const c = loadConfig({}, '/srv/gp');
    expect(c).toMatchObject({
      port: 8080,
      influx: {
        url: null,
        database: 'gpupulse',
        token: null,
        username: null,
        password: null,
        binary: 'influxd',
      },
      agentTokens: [],
      projectsFile: null,
      dataDir: '/srv/gp/.data',
      redisUrl: null,
      logLevel: 'info',
      webDir: DEFAULT_WEB_DIR,
    });
    expect(DEFAULT_WEB_DIR).toMatch(/web\/dist$/);
  });

  it('reads every variable', () => {
    const c = loadConfig(
      {
        GPUPULSE_PORT: '0',
        GPUPULSE_INFLUX_URL: 'http://influx:8086',
        GPUPULSE_INFLUX_DB: 'gp',
        GPUPULSE_INFLUX_TOKEN: 'tok',
        GPUPULSE_AGENT_TOKENS: ' a, b ,,c ',
        GPUPULSE_PROJECTS: 'projects.yaml',
        GPUPULSE_DATA_DIR: '/var/lib/gp',
        GPUPULSE_REDIS_URL: 'redis://r:6379',
        GPUPULSE_WEB_DIR: 'web',
        GPUPULSE_LOG_LEVEL: 'debug',
        GPUPULSE_INFLUX_BINARY: '/opt/influxd',
      },
      '/srv/gp',
    );
    expect(c).toMatchObject({
      port: 0,
      influx: { url: 'http://influx:8086', database: 'gp', token: 'tok', binary: '/opt/influxd' },
      agentTokens: ['a', 'b', 'c'],
      projectsFile: '/srv/gp/projects.yaml',
      dataDir: '/var/lib/gp',
      redisUrl: 'redis://r:6379',
      webDir: '/srv/gp/web',
      logLevel: 'debug',
    });
  });

  it('lists every problem clearly', () => {
    let err: unknown;
    try {
      loadConfig({ GPUPULSE_PORT: 'eighty', GPUPULSE_INFLUX_URL: 'influx:8086', GPUPULSE_LOG_LEVEL: 'loud' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issues = (err as ConfigError).issues.join('\n');
    expect(issues).toMatch(/GPUPULSE_PORT/);
    expect(issues).toMatch(/GPUPULSE_INFLUX_URL must be an http\(s\) URL/);
    expect(issues).toMatch(/GPUPULSE_LOG_LEVEL must be one of/);
    expect(() => loadConfig({ GPUPULSE_PORT: '70000' })).toThrow(/0\.\.65535/);
    expect(() => loadConfig({ GPUPULSE_INFLUX_USER: 'u' })).toThrow(/GPUPULSE_INFLUX_PASSWORD/);
  });
});
