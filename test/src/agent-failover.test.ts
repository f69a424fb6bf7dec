// The real agent (its CLI, a fake nvidia-smi) against real gpupulse servers: `--server URL,URL`
// fails over in order when a server is unreachable, and `--ca` trusts a private CA for a server
// started with GPUPULSE_TLS_CERT/GPUPULSE_TLS_KEY.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type GpupulseServer } from '@gpupulse/server';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_TOKEN, type Proc, startAgent } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gpupulse-failover-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function server(extra: Parameters<typeof createServer>[0] = {}): Promise<GpupulseServer> {
  const s = await createServer({
    ...extra,
    config: {
      port: 0,
      host: '127.0.0.1',
      agentTokens: [AGENT_TOKEN],
      dataDir: await tempDir(),
      ...extra.config,
    },
  });
  let closed = false;
  const realClose = s.close.bind(s);
  const close = async () => {
    if (closed) return;
    closed = true;
    await realClose();
  };
  cleanups.push(close);
  return Object.assign(s, { close });
}

/** An address where nothing listens. */
async function deadUrl(): Promise<string> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function agent(o: Parameters<typeof startAgent>[0]): Proc {
  const a = startAgent(o);
  cleanups.push(async () => {
    await a.stop();
  });
  return a;
}

const seen = (s: GpupulseServer, node: string) => {
  const v = s.fleet.view(node);
  // undefined, not null: waitFor takes any other value as done.
  return v?.connected === true && v.lastSampleTs !== null ? v : undefined;
};

describe('agent failover (--server URL,URL)', () => {
  it('the first server unreachable: the agent reports through the second', async () => {
    const dead = await deadUrl();
    const live = await server();
    const a = agent({ server: `${dead},${live.url}`, node: 'failover-1' });
    await waitFor('the node on the second server', () => seen(live, 'failover-1'), 20_000);
    const first = seen(live, 'failover-1')!.lastSampleTs!;
    await waitFor('newer samples', () => (seen(live, 'failover-1')?.lastSampleTs ?? 0) > first, 10_000);
    expect(a.output()).toMatch(/failing over to the next server/);
  });

  it('the connected server stops: the agent moves to the next one within 15 s and keeps reporting', async () => {
    const first = await server();
    const second = await server();
    const a = agent({ server: `${first.url},${second.url}`, node: 'failover-2' });
    await waitFor('the node on the first server', () => seen(first, 'failover-2'), 20_000);
    expect(second.fleet.view('failover-2')).toBeFalsy();
    await first.close();
    const t0 = Date.now();
    await waitFor('the node on the second server', () => seen(second, 'failover-2'), 15_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const ts = seen(second, 'failover-2')!.lastSampleTs!;
    await waitFor(
      'newer samples on the second',
      () => (seen(second, 'failover-2')?.lastSampleTs ?? 0) > ts,
      10_000,
    );
    expect(a.output()).toContain(`"to":"${second.url}"`);
  });
});

describe('agent --ca (private CA) against an HTTPS server', () => {
  it('trusts the server with --ca; without it the agent cannot connect', async () => {
    const dir = await tempDir();
    const f = (n: string) => join(dir, n);
    const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')]);
    ossl([
      'req',
      '-x509',
      '-new',
      '-key',
      f('ca.key'),
      '-sha256',
      '-days',
      '2',
      '-subj',
      '/CN=Centre CA',
      '-out',
      f('ca.crt'),
    ]);
    ossl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('server.key')]);
    ossl(['req', '-new', '-key', f('server.key'), '-subj', '/CN=127.0.0.1', '-out', f('server.csr')]);
    await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    ossl([
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-sha256',
      '-extfile',
      f('ext.cnf'),
      '-out',
      f('server.crt'),
    ]);

    const tls = await server({ config: { tls: { certFile: f('server.crt'), keyFile: f('server.key') } } });
    expect(tls.url).toMatch(/^https:/);

    const untrusted = agent({ server: tls.url, node: 'tls-untrusted' });
    await waitFor(
      'the agent to say it cannot connect',
      () => /unreachable|certificate/i.test(untrusted.output()),
      15_000,
    );
    expect(tls.fleet.view('tls-untrusted')).toBeFalsy();

    agent({ server: tls.url, node: 'tls-ca', extraArgs: ['--ca', f('ca.crt')] });
    await waitFor('the node over wss', () => seen(tls, 'tls-ca'), 20_000);
  });
});
