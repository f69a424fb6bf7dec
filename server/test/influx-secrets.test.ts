import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { InfluxStore } from '../src/storage/influx-store.ts';
import { onCleanup } from './helpers.ts';

/** A stand-in InfluxDB HTTP endpoint that records what it is sent. */
async function recorder() {
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(req.url?.includes('/query') ? 200 : 204, { 'content-type': 'application/json' });
      res.end(req.url?.includes('/query') ? '{"results":[{"statement_id":0}]}' : undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = () => new Promise<void>((r) => server.close(() => r()));
  onCleanup(close);
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close };
}

function captureLogs() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), text: () => text };
}

describe('InfluxDB credentials are never echoed', () => {
  it('credentials or a query string in GPUPULSE_INFLUX_URL are refused at start, with what to use instead', () => {
    for (const url of [
      'http://admin:hunter2@influx.example:8086',
      'http://admin@influx.example:8086',
      'https://influx.example/?u=admin&p=hunter2',
    ]) {
      let err: unknown = null;
      try {
        loadConfig({ GPUPULSE_INFLUX_URL: url });
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toContain('GPUPULSE_INFLUX_URL must not contain');
      expect(message).toContain('GPUPULSE_INFLUX_USER/GPUPULSE_INFLUX_PASSWORD or GPUPULSE_INFLUX_TOKEN');
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('admin');
    }
    expect(loadConfig({ GPUPULSE_INFLUX_URL: 'https://influx.example:8086/prefix' }).influx.url).toBe(
      'https://influx.example:8086/prefix',
    );
    expect(() => new InfluxStore({ url: 'http://admin:hunter2@h:8086', database: 'd' })).toThrow(
      /GPUPULSE_INFLUX_USER/,
    );
  });

  it('user and password go in an Authorization header, never the URL; health and logs show the origin only', async () => {
    const rx = await recorder();
    const logs = captureLogs();
    const store = new InfluxStore({
      url: `${rx.origin}/secret-path-token`,
      database: 'db',
      username: 'admin',
      password: 'hunter2',
      timeoutMs: 1000,
      logger: logs.logger,
    });
    await store.init();
    await store.write([{ measurement: 'm', tags: {}, ints: { v: 1 }, ts: 1_800_000_000_000 }]);
    expect(rx.seen.map((s) => new URL(s.url, rx.origin).pathname)).toEqual([
      '/secret-path-token/ping',
      '/secret-path-token/query',
      '/secret-path-token/write',
    ]);
    for (const s of rx.seen) {
      expect(s.url).not.toContain('hunter2');
      expect(s.headers.authorization).toBe(`Basic ${Buffer.from('admin:hunter2').toString('base64')}`);
    }
    expect(store.info()).toEqual({ kind: 'influxdb', ok: true, warning: null });

    // Unreachable: the warning (health, dashboard snapshots) and the log name the origin only.
    await rx.close();
    await store
      .write([{ measurement: 'm', tags: {}, ints: { v: 2 }, ts: 1_800_000_000_001 }])
      .catch(() => {});
    const info = store.info();
    expect(info.ok).toBe(false);
    expect(info.warning).toContain(`InfluxDB at ${rx.origin} is unreachable`);
    expect(info.warningCode).toBe('influx-unreachable');
    for (const shown of [JSON.stringify(info), logs.text()]) {
      expect(shown).not.toContain('secret-path-token');
      expect(shown).not.toContain('hunter2');
      expect(shown).not.toContain('admin');
    }
    expect(logs.text()).toContain(rx.origin);
  });
});
