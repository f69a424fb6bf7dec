import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DASHBOARD_NAMESPACE, PROTOCOL_VERSION } from '@gpupulse/protocol';
import { Server as SocketIOServer } from 'socket.io';
import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import {
  CONTENT_SECURITY_POLICY,
  createHttpListener,
  isAllowedOrigin,
  parseAllowedOrigins,
  securityHeaders,
} from '../src/http/security.ts';
import { onCleanup, startServer, tempDir } from './helpers.ts';

/** A self-signed certificate for 127.0.0.1 made by Debian's openssl (as an operator would). */
async function selfSigned(dir: string, name = 'server'): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'pipe' },
  );
  return { cert, key };
}

describe('security headers', () => {
  it('sends a CSP without unsafe-inline scripts, frame-ancestors, and HSTS only when secure', () => {
    const plain = securityHeaders({ secure: false });
    const csp = plain['content-security-policy']!;
    expect(csp).toBe(CONTENT_SECURITY_POLICY);
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name!, values] as const;
      }),
    );
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('style-src')).toEqual(["'self'"]);
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(directives.get('base-uri')).toEqual(["'self'"]);
    expect(directives.get('form-action')).toEqual(["'self'"]);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(plain['x-content-type-options']).toBe('nosniff');
    expect(plain['strict-transport-security']).toBeUndefined();
    expect(securityHeaders({ secure: true })['strict-transport-security']).toMatch(/^max-age=\d{7,}/);
  });
});

describe('isAllowedOrigin', () => {
  const cases: Array<[string | undefined, string | undefined, string[], boolean, boolean]> = [
    // no Origin: not a browser (agent, curl, Prometheus): credentials decide
    [undefined, 'gpupulse.example', [], false, true],
    ['', 'gpupulse.example', [], false, true],
    // same origin as the Host the browser addressed
    ['http://gpupulse.example', 'gpupulse.example', [], false, true],
    ['http://127.0.0.1:8080', '127.0.0.1:8080', [], false, true],
    ['https://gpupulse.example', 'gpupulse.example', [], true, true],
    ['https://gpupulse.example', 'gpupulse.example:443', [], true, true],
    ['HTTP://GPUPULSE.example:80', 'gpupulse.example', [], false, true],
    // scheme, port or host differ
    ['https://gpupulse.example', 'gpupulse.example', [], false, false],
    ['http://gpupulse.example', 'gpupulse.example', [], true, false],
    ['http://127.0.0.1:8081', '127.0.0.1:8080', [], false, false],
    ['http://evil.example', 'gpupulse.example', [], false, false],
    ['http://gpupulse.example.evil.example', 'gpupulse.example', [], false, false],
    ['null', 'gpupulse.example', [], false, false],
    ['not a url', 'gpupulse.example', [], false, false],
    ['http://evil.example', undefined, [], false, false],
    // listed in GPUPULSE_ALLOWED_ORIGINS
    ['https://wall.example:8443', 'gpupulse.example', ['https://wall.example:8443'], false, true],
    ['https://wall.example', 'gpupulse.example', ['https://wall.example:8443'], false, false],
  ];
  it.each(cases)('Origin %j, Host %j, allowed %j, secure %j -> %j', (origin, host, allowed, secure, ok) => {
    expect(isAllowedOrigin(origin, host, allowed, secure)).toBe(ok);
  });

  it('parses GPUPULSE_ALLOWED_ORIGINS and names a bad entry', () => {
    expect(parseAllowedOrigins(undefined)).toEqual([]);
    expect(parseAllowedOrigins(' https://a.example , http://b.example:8080 ')).toEqual([
      'https://a.example',
      'http://b.example:8080',
    ]);
    expect(() => parseAllowedOrigins('https://a.example/path')).toThrow(
      /"https:\/\/a\.example\/path" is not an origin/,
    );
    expect(() => parseAllowedOrigins('wall.example')).toThrow(/"wall\.example" is not an origin/);
  });
});

describe('createHttpListener', () => {
  it('names the variable and file when the certificate or key cannot be read', async () => {
    const dir = await tempDir();
    expect(() =>
      createHttpListener({ tlsCert: join(dir, 'nope.crt'), tlsKey: join(dir, 'nope.key') }, () => {}),
    ).toThrow(/GPUPULSE_TLS_CERT: cannot read the TLS certificate ".*nope\.crt" \(ENOENT\)/);
    const { cert } = await selfSigned(dir);
    expect(() => createHttpListener({ tlsCert: cert, tlsKey: null }, () => {})).toThrow(
      /needs both GPUPULSE_TLS_CERT and GPUPULSE_TLS_KEY/,
    );
    const garbage = join(dir, 'garbage.key');
    await writeFile(garbage, 'not a key\n');
    expect(() => createHttpListener({ tlsCert: cert, tlsKey: garbage }, () => {})).toThrow(
      /not a usable PEM certificate and matching key/,
    );
    const other = await selfSigned(dir, 'other');
    expect(() => createHttpListener({ tlsCert: cert, tlsKey: other.key }, () => {})).toThrow(
      /not a usable PEM certificate and matching key/,
    );
  });

  it('serves HTTPS and WSS: a Socket.IO client with the CA connects, one without it is refused', async () => {
    const dir = await tempDir();
    const { cert, key } = await selfSigned(dir);
    const ca = readFileSync(cert, 'utf8');
    const listener = createHttpListener({ tlsCert: cert, tlsKey: key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    const sio = new SocketIOServer(listener, { serveClient: false });
    sio.of('/dashboard').on('connection', (s) => s.emit('hello', 'over tls'));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    onCleanup(
      () =>
        new Promise<void>((r) => {
          sio.close(() => r());
          listener.closeAllConnections();
        }),
    );
    const url = `https://127.0.0.1:${(listener.address() as AddressInfo).port}`;

    // The WebSocket transport only: a TLS handshake failure shows at once, not after polling retries.
    const trusted = io(`${url}/dashboard`, { ca, transports: ['websocket'], reconnection: false });
    onCleanup(() => {
      trusted.close();
    });
    const hello = await new Promise<string>((resolve, reject) => {
      trusted.on('hello', resolve);
      trusted.on('connect_error', reject);
    });
    expect(hello).toBe('over tls');
    expect(trusted.io.engine.transport.name).toBe('websocket');

    const untrusted = io(`${url}/dashboard`, { transports: ['websocket'], reconnection: false });
    onCleanup(() => {
      untrusted.close();
    });
    const refusal = await new Promise<Error>((resolve, reject) => {
      untrusted.on('connect', () => reject(new Error('connected without trusting the certificate')));
      untrusted.on('connect_error', resolve);
    });
    const cause = (refusal as Error & { description?: { message?: string; code?: string } }).description;
    expect(`${refusal.message} ${cause?.message ?? ''} ${cause?.code ?? ''}`).toMatch(
      /self[- ]signed|DEPTH_ZERO_SELF_SIGNED_CERT|websocket error/i,
    );
    expect(untrusted.connected).toBe(false);

    // Plain HTTP to the TLS port gets no answer a client could mistake for the API.
    const plain = await fetch(`${url.replace('https:', 'http:')}/`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
  });

  it('the whole server over HTTPS: HSTS and CSP on responses, the dashboard socket over WSS with the CA only', async () => {
    const dir = await tempDir();
    const { cert, key } = await selfSigned(dir);
    const ca = readFileSync(cert, 'utf8');
    const server = await startServer({ config: { tls: { certFile: cert, keyFile: key } } });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const res = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>(
      (resolve, reject) => {
        httpsGet(`${server.url}/api/v1/health`, { ca }, (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, headers: r.headers });
        }).on('error', reject);
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers['strict-transport-security']).toMatch(/^max-age=/);
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);

    const auth = { protocolVersion: PROTOCOL_VERSION };
    const trusted = io(server.url + DASHBOARD_NAMESPACE, {
      ca,
      auth,
      transports: ['websocket'],
      reconnection: false,
    });
    onCleanup(() => {
      trusted.close();
    });
    await new Promise<void>((resolve, reject) => {
      trusted.on('fleet:snapshot', () => resolve());
      trusted.on('connect_error', reject);
    });

    const untrusted = io(server.url + DASHBOARD_NAMESPACE, {
      auth,
      transports: ['websocket'],
      reconnection: false,
    });
    onCleanup(() => {
      untrusted.close();
    });
    await new Promise<void>((resolve, reject) => {
      untrusted.on('connect', () => reject(new Error('connected without trusting the certificate')));
      untrusted.on('connect_error', () => resolve());
    });
    expect(untrusted.connected).toBe(false);
  });
});
