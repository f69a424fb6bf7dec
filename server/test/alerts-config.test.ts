import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AlertsConfigError,
  buildAlertsConfig,
  DEFAULT_ALERT_RULES,
  loadAlertsFile,
  parseWebhookList,
} from '../src/alerts/config.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { tempDir } from './helpers.ts';

describe('alerts config', () => {
  it('has the documented defaults', () => {
    const c = buildAlertsConfig({});
    const byId = Object.fromEntries(c.rules.map((r) => [r.id, r]));
    expect(Object.keys(byId)).toEqual([
      'gpu_temperature_high',
      'memory_temperature_high',
      'gpu_throttled',
      'ecc_uncorrectable',
      'remapped_rows',
      'xid_error',
      'gpu_stale',
      'node_offline',
      'gpu_idle_held',
    ]);
    expect(byId.gpu_temperature_high).toMatchObject({ threshold: 85, forMs: 60_000 });
    expect(byId.memory_temperature_high).toMatchObject({ threshold: 95, forMs: 0 });
    expect(byId.gpu_throttled).toMatchObject({
      forMs: 30_000,
      reasons: ['hw_thermal_slowdown', 'sw_thermal_slowdown', 'hw_power_brake_slowdown'],
    });
    expect(byId.gpu_idle_held).toMatchObject({ threshold: 3600 });
    expect(c.webhooks).toEqual([]);
    expect(c.maxResolved).toBe(500);
    // Defaults are not mutated by overrides.
    buildAlertsConfig({ rules: [{ id: 'gpu_throttled', reasons: ['x'] }] });
    expect(DEFAULT_ALERT_RULES.find((r) => r.id === 'gpu_throttled')!.reasons).toHaveLength(3);
  });

  it('reads YAML; errors name the key and the line', async () => {
    const dir = await tempDir();
    const good = join(dir, 'alerts.yaml');
    await writeFile(
      good,
      [
        'rules:',
        '  - id: gpu_temperature_high',
        '    threshold: 80',
        '    for: 2m',
        'webhooks:',
        '  - url: https://chat.example/hook',
        '    format: slack',
        '    ratePerMinute: 5',
        '  - https://hooks.slack.com/services/T/B/x',
        '',
      ].join('\n'),
    );
    const c = loadAlertsFile(good, { webhooks: parseWebhookList('http://127.0.0.1:9/a') });
    expect(c.rules.find((r) => r.id === 'gpu_temperature_high')).toMatchObject({
      threshold: 80,
      forMs: 120_000,
    });
    expect(c.webhooks.map((w) => [w.url, w.format, w.ratePerMinute])).toEqual([
      ['http://127.0.0.1:9/a', 'json', 10],
      ['https://chat.example/hook', 'slack', 5],
      ['https://hooks.slack.com/services/T/B/x', 'slack', 10],
    ]);

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, ['rules:', '  - id: gpu_temperature_high', '    threshold: hot', ''].join('\n'));
    let err: unknown;
    try {
      loadAlertsFile(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AlertsConfigError);
    expect((err as AlertsConfigError).issues[0]).toMatch(/^rules\[0\]\.threshold \(line 3\): /);

    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'rules: [\n');
    expect(() => loadAlertsFile(broken)).toThrow(/line \d+/);
    expect(() => loadAlertsFile(join(dir, 'missing.yaml'))).toThrow(/cannot read/);
  });

  it('refuses unknown keys, new rules without kind, duplicates and bad durations', () => {
    const issues = (f: unknown) => {
      try {
        buildAlertsConfig(f);
      } catch (e) {
        return (e as AlertsConfigError).issues;
      }
      return [];
    };
    expect(issues({ rulez: [] })[0]).toMatch(/rulez|unrecognized/i);
    expect(issues({ rules: [{ id: 'mine' }] })[0]).toMatch(/rules\[0\]\.kind: required/);
    expect(
      issues({
        rules: [
          { id: 'a', kind: 'xid' },
          { id: 'a', kind: 'xid' },
        ],
      })[0],
    ).toMatch(/duplicate/);
    expect(issues({ rules: [{ id: 'gpu_stale', for: 'soon' }] })[0]).toMatch(/rules\[0\]\.for: .*duration/);
    expect(issues({ rules: [{ id: 't', kind: 'gpu_temperature' }] })[0]).toMatch(/threshold: required/);
    expect(issues({ webhooks: ['ftp://x'] })[0]).toMatch(/webhooks\[0\]: .*http/);
  });

  it('GPUPULSE_WEBHOOKS / GPUPULSE_ALERTS / GPUPULSE_SPOOL_MAX_BYTES in the server config', () => {
    const c = loadConfig(
      {
        GPUPULSE_WEBHOOKS: 'slack+http://a.example/x, http://b.example/y',
        GPUPULSE_ALERTS: 'alerts.yaml',
        GPUPULSE_SPOOL_MAX_BYTES: '1048576',
      },
      '/srv',
    );
    expect(c.webhooks).toEqual(['slack+http://a.example/x', 'http://b.example/y']);
    expect(parseWebhookList(c.webhooks.join(',')).map((w) => w.format)).toEqual(['slack', 'json']);
    expect(c.alertsFile).toBe('/srv/alerts.yaml');
    expect(c.spool).toEqual({ enabled: true, maxBytes: 1048576 });
    expect(loadConfig({ GPUPULSE_SPOOL_MAX_BYTES: '0' }).spool.enabled).toBe(false);
    expect(loadConfig({}).spool).toEqual({ enabled: true, maxBytes: 1024 ** 3 });
    expect(() => loadConfig({ GPUPULSE_WEBHOOKS: 'not a url' })).toThrow(ConfigError);
  });
});
