// Agents speak only for their nodes: tokens bound to node globs in the access file, one token per
// live node, handshake and report rate limits. Real server, real Socket.IO clients, a real access
// file in a temp dir (reloaded by the server's AccessRegistry).
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerNotice } from '@gpupulse/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  AgentAuthority,
  type AgentRateLimits,
  addressKey,
  OncePerInterval,
  TokenBuckets,
  tokenDigest,
} from '../src/socket/agent-auth.ts';
import {
  type AgentClient,
  connectAgent,
  refusal,
  report,
  sample,
  startServer,
  TOKEN,
  tempDir,
  waitFor,
} from './helpers.ts';

const sha = (t: string) => createHash('sha256').update(t).digest('hex');
const RACK_A = 'rack-a-secret-3f9c';
const RACK_B = 'rack-b-secret-71d2';
const DGX = 'lab-dgx-secret-0a0a';

function accessYaml(agents: Array<{ name: string; token: string; nodes: string[] }>): string {
  return [
    'anonymous: display',
    agents.length === 0 ? 'agents: []' : 'agents:',
    ...agents.map(
      (a) =>
        `  - { name: ${a.name}, sha256: "${sha(a.token)}", nodes: [${a.nodes.map((n) => `"${n}"`).join(', ')}] }`,
    ),
    '',
  ].join('\n');
}

const DEFAULT_AGENTS = [
  { name: 'rack-a', token: RACK_A, nodes: ['gpu-a-*'] },
  { name: 'rack-b', token: RACK_B, nodes: ['gpu-b-*'] },
  { name: 'lab-dgx', token: DGX, nodes: ['dgx-01', 'dgx-02'] },
];

/** A server with an access file (agents rack-a, rack-b, lab-dgx) and the env token TOKEN; logs captured. */
async function serverWithAccess(
  agents = DEFAULT_AGENTS,
  opts: { envTokens?: string[]; agentLimits?: Partial<AgentRateLimits> } = {},
) {
  const dir = await tempDir('gpupulse-agent-auth-');
  const file = join(dir, 'access.yaml');
  await writeFile(file, accessYaml(agents));
  const lines: Array<Record<string, unknown> & { msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const server = await startServer({
    logger,
    config: { accessFile: file, agentTokens: opts.envTokens ?? [TOKEN], agentLimits: opts.agentLimits },
  });
  return { server, file, lines };
}

const metricsText = async (url: string) => (await fetch(`${url}/metrics`)).text();
const counterValue = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);

describe('agent tokens bound to nodes', () => {
  it('a token bound to gpu-a-* reports as gpu-a-01 but is refused as gpu-b-01, naming the rule', async () => {
    const { server } = await serverWithAccess();
    const a = await connectAgent(server, { token: RACK_A, node: 'gpu-a-01' });
    expect((await report(a, { samples: [sample(1, Date.now())] })).ok).toBe(true);

    const err = await refusal(server, { token: RACK_A, node: 'gpu-b-01' });
    expect(err.data).toEqual({
      code: 'UNAUTHORIZED',
      message: "agent token 'rack-a' may report only nodes matching gpu-a-*; refused node gpu-b-01",
    });
    // A glob list names every pattern; the token itself never appears.
    const dgx = await refusal(server, { token: DGX, node: 'dgx-03' });
    expect(dgx.message).toBe(
      "agent token 'lab-dgx' may report only nodes matching dgx-01, dgx-02; refused node dgx-03",
    );
    expect(dgx.message).not.toContain(DGX);
    expect(server.fleet.view('gpu-b-01')).toBeFalsy();
    await connectAgent(server, { token: DGX, node: 'dgx-02' });
  });

  it('a token bound to gpu-a-* cannot replace gpu-b-01; the holder stays and keeps reporting', async () => {
    const { server, lines } = await serverWithAccess();
    const holder = await connectAgent(server, { token: RACK_B, node: 'gpu-b-01' });
    const holderDisconnects: string[] = [];
    holder.on('disconnect', (r) => holderDisconnects.push(r));

    const bound = await refusal(server, { token: RACK_A, node: 'gpu-b-01' });
    expect(bound.data?.code).toBe('UNAUTHORIZED');
    // An unbound env token may report any node, but not take a live node from another token.
    const other = await refusal(server, { token: TOKEN, node: 'gpu-b-01' });
    expect(other.data).toEqual({
      code: 'UNAUTHORIZED',
      message: expect.stringMatching(/^node gpu-b-01 is connected with another token/),
    });
    expect(holder.connected).toBe(true);
    expect(holderDisconnects).toEqual([]);
    expect((await report(holder, { samples: [sample(2, Date.now())] })).ok).toBe(true);
    // Both sides are in the log line: the refused connection and the holder.
    const line = lines.find((l) => /connected with another token/.test(l.msg));
    expect(line).toMatchObject({ code: 'UNAUTHORIZED', node: 'gpu-b-01', agent: 'GPUPULSE_AGENT_TOKENS[0]' });
    expect(line?.holder).toMatchObject({ agent: 'rack-b', remote: expect.any(String) });
    expect(JSON.stringify(lines)).not.toContain(RACK_A);
    expect(JSON.stringify(lines)).not.toContain(RACK_B);
  });

  it('the same token may replace its own node (the agent restarted)', async () => {
    const { server } = await serverWithAccess();
    const first = await connectAgent(server, { token: RACK_A, node: 'gpu-a-07' });
    const notices: ServerNotice[] = [];
    first.on('server:notice', (n) => notices.push(n));
    const gone = new Promise<string>((r) => first.once('disconnect', r));
    const second = await connectAgent(server, { token: RACK_A, node: 'gpu-a-07' });
    expect(await gone).toBe('io server disconnect');
    expect(notices.map((n) => n.code)).toContain('REPLACED');
    expect(second.connected).toBe(true);
    expect((await report(second, { samples: [sample(1, Date.now())] })).ok).toBe(true);
    await waitFor(() => server.health().agents === 1, 2000, 'one agent');
  });

  it('unbound GPUPULSE_AGENT_TOKENS still work for any node, beside bound ones', async () => {
    const { server } = await serverWithAccess(DEFAULT_AGENTS, {
      envTokens: [TOKEN, 'second-env-token'],
    });
    const a = await connectAgent(server, { token: TOKEN, node: 'anything-01' });
    const b = await connectAgent(server, { token: 'second-env-token', node: 'gpu-a-99' });
    expect((await report(a, { samples: [sample(1, Date.now())] })).ok).toBe(true);
    expect((await report(b, { samples: [sample(1, Date.now())] })).ok).toBe(true);
    // The same unbound token may hold several nodes; a bound token still only its own.
    await connectAgent(server, { token: TOKEN, node: 'gpu-b-05' });
    expect((await refusal(server, { token: RACK_A, node: 'anything-01' })).data?.code).toBe('UNAUTHORIZED');
    // Without any agent token at all, every agent is refused with how to fix it.
    const { server: none } = await serverWithAccess([], { envTokens: [] });
    const err = await refusal(none, { token: 'x' });
    expect(err.message).toMatch(/GPUPULSE_AGENT_TOKENS.*GPUPULSE_ACCESS_FILE/);
  });

  it('a replaced-connection storm between two tokens does not flap the node', async () => {
    const { server } = await serverWithAccess([
      { name: 'rack-a', token: RACK_A, nodes: ['gpu-a-*'] },
      { name: 'rack-a-rogue', token: RACK_B, nodes: ['gpu-a-*'] },
    ]);
    const holder = await connectAgent(server, { token: RACK_A, node: 'gpu-a-01' });
    expect(server.fleet.view('gpu-a-01')?.connected).toBe(true);
    let holderDisconnected = false;
    holder.on('disconnect', () => {
      holderDisconnected = true;
    });
    // The holder reports every 20 ms while the other token hammers connects for the same node.
    let seq = 0;
    const acks: boolean[] = [];
    let stop = false;
    const reporting = (async () => {
      while (!stop) {
        const ack = await report(holder, { samples: [sample(++seq, Date.now())] });
        acks.push(ack.ok);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const codes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const tries = await Promise.all(
        Array.from({ length: 8 }, () =>
          refusal(server, { token: RACK_B, node: 'gpu-a-01' }).then(
            (e) => e.data?.code ?? 'none',
            () => 'CONNECTED',
          ),
        ),
      );
      codes.push(...tries);
    }
    stop = true;
    await reporting;
    expect(codes).toHaveLength(48);
    expect(codes).not.toContain('CONNECTED');
    expect(new Set(codes)).toEqual(new Set(['UNAUTHORIZED', 'RATE_LIMITED']));
    // After 10 tries the other token's own bucket is empty: the rest are RATE_LIMITED (one more
    // may have refilled meanwhile: 10 a minute).
    const unauthorized = codes.filter((c) => c === 'UNAUTHORIZED').length;
    expect(unauthorized).toBeGreaterThanOrEqual(10);
    expect(unauthorized).toBeLessThanOrEqual(11);
    expect(holderDisconnected).toBe(false);
    expect(holder.connected).toBe(true);
    expect(acks.length).toBeGreaterThan(3);
    expect(acks.every(Boolean)).toBe(true);
    const view = server.fleet.view('gpu-a-01');
    expect(view?.connected).toBe(true);
    expect(server.health().agents).toBe(1);
    // And the holder's own handshakes were not used up by the storm: it can still restart.
    const restarted = await connectAgent(server, { token: RACK_A, node: 'gpu-a-01' });
    expect((await report(restarted, { samples: [sample(++seq, Date.now())] })).ok).toBe(true);
  });
});

describe('rate limits', () => {
  it('handshakes per node and token: the 11th within a minute is RATE_LIMITED, counted, logged once', async () => {
    const { server, lines } = await serverWithAccess();
    const before = counterValue(
      await metricsText(server.url),
      /gpupulse_agent_connections_refused_total\{code="RATE_LIMITED"\} (\d+)/,
    );
    const clients: AgentClient[] = [];
    for (let i = 0; i < 10; i++)
      clients.push(await connectAgent(server, { token: RACK_A, node: 'gpu-a-02' }));
    const refusals = [];
    for (let i = 0; i < 5; i++) refusals.push(await refusal(server, { token: RACK_A, node: 'gpu-a-02' }));
    for (const r of refusals) {
      expect(r.data?.code).toBe('RATE_LIMITED');
      expect(r.message).toMatch(
        /too many handshakes for node gpu-a-02 \(more than 10 a minute\); retry later/,
      );
    }
    // Another node of the same token has its own budget.
    await connectAgent(server, { token: RACK_A, node: 'gpu-a-03' });
    const text = await metricsText(server.url);
    expect(
      counterValue(text, /gpupulse_agent_connections_refused_total\{code="RATE_LIMITED"\} (\d+)/) - before,
    ).toBe(5);
    // Five refusals from one address → one log line (the rest are counted, not logged).
    expect(lines.filter((l) => /^agent refused: too many handshakes/.test(l.msg))).toHaveLength(1);
  });

  it('handshakes per source address: refused before any token check, whatever the token or node', async () => {
    const { server, lines } = await serverWithAccess(DEFAULT_AGENTS, {
      agentLimits: { exemptLoopback: false, handshakesPerAddress: { burst: 4, perSecond: 4 / 60 } },
    });
    await connectAgent(server, { token: RACK_A, node: 'gpu-a-01' });
    await connectAgent(server, { token: RACK_B, node: 'gpu-b-01' });
    expect((await refusal(server, { token: 'wrong' })).data?.code).toBe('UNAUTHORIZED');
    await connectAgent(server, { token: DGX, node: 'dgx-01' });
    const limited = await Promise.all([
      refusal(server, { token: DGX, node: 'dgx-02' }),
      refusal(server, { token: 'wrong' }),
      refusal(server, { token: RACK_A, node: 'gpu-a-09' }),
    ]);
    for (const err of limited) {
      expect(err.data?.code).toBe('RATE_LIMITED');
      expect(err.message).toMatch(
        /^too many agent handshakes from \S+ \(more than 4 a minute\); retry later$/,
      );
    }
    const text = await metricsText(server.url);
    expect(counterValue(text, /gpupulse_agent_connections_refused_total\{code="RATE_LIMITED"\} (\d+)/)).toBe(
      3,
    );
    expect(counterValue(text, /gpupulse_agent_connections_refused_total\{code="UNAUTHORIZED"\} (\d+)/)).toBe(
      1,
    );
    const logged = lines.filter((l) => /^agent refused: too many agent handshakes/.test(l.msg));
    expect(logged).toHaveLength(1);
    // The three connected agents were not touched.
    expect(server.health().agents).toBe(3);
  });

  it('reports per node: beyond the burst the ack is RATE_LIMITED (nothing stored), counted in /metrics', async () => {
    const { server } = await serverWithAccess();
    const a = await connectAgent(server, { token: RACK_A, node: 'gpu-a-04' });
    const now = Date.now();
    const acks = await Promise.all(
      Array.from({ length: 160 }, (_, i) => report(a, { samples: [sample(i, now - 160_000 + i * 1000)] })),
    );
    const limited = acks.filter((x) => !x.ok && x.error.code === 'RATE_LIMITED');
    const taken = acks.filter((x) => x.ok);
    expect(taken.length).toBeGreaterThanOrEqual(100);
    expect(limited.length).toBeGreaterThan(0);
    expect(taken.length + limited.length).toBe(160);
    const first = limited[0];
    if (first && !first.ok) {
      expect(first.error.message).toMatch(/more than 50 reports per second/);
      expect(first.error.retryAfterMs).toBe(1000);
    }
    const text = await metricsText(server.url);
    expect(
      counterValue(
        text,
        /gpupulse_rejected_payloads_total\{event="samples:report",reason="rate_limited"\} (\d+)/,
      ),
    ).toBe(limited.length);
    // Only the samples of the taken reports were received (the others stay with the agent).
    expect(counterValue(text, /gpupulse_samples_received_total (\d+)/)).toBe(taken.length);
    // A second later the bucket has refilled: normal traffic goes through.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await report(a, { samples: [sample(1000, Date.now())] })).ok).toBe(true);
  });
});

describe('access file reload', () => {
  it('a removed token or a node no longer covered is disconnected with a notice; the others stay', async () => {
    const { server, file } = await serverWithAccess();
    const watch = (c: AgentClient) => {
      const seen = { notices: [] as ServerNotice[], disconnected: null as string | null };
      c.on('server:notice', (n) => seen.notices.push(n));
      c.on('disconnect', (r) => {
        seen.disconnected = r;
      });
      return seen;
    };
    const a = await connectAgent(server, { token: RACK_A, node: 'gpu-a-01' });
    const b = await connectAgent(server, { token: RACK_B, node: 'gpu-b-01' });
    const d = await connectAgent(server, { token: DGX, node: 'dgx-01' });
    const env = await connectAgent(server, { token: TOKEN, node: 'env-node' });
    const [sa, sb, sd, se] = [watch(a), watch(b), watch(d), watch(env)];

    // rack-b removed; lab-dgx no longer covers dgx-01; rack-a unchanged.
    await writeFile(
      file,
      accessYaml([
        { name: 'rack-a', token: RACK_A, nodes: ['gpu-a-*'] },
        { name: 'lab-dgx', token: DGX, nodes: ['dgx-02'] },
      ]),
    );
    expect(server.access.reload()).toBe(true);
    await waitFor(() => sb.disconnected && sd.disconnected, 3000, 'the two revoked agents to be closed');
    expect(sb.notices).toContainEqual({
      level: 'error',
      code: 'UNAUTHORIZED',
      message: "agent token 'rack-b' is no longer accepted (access file reloaded); connection closed",
    });
    expect(sd.notices[0]?.message).toBe(
      "agent token 'lab-dgx' may report only nodes matching dgx-02; refused node dgx-01 (access file reloaded); connection closed",
    );
    expect(sb.disconnected).toBe('io server disconnect');
    await new Promise((r) => setTimeout(r, 100));
    expect(a.connected).toBe(true);
    expect(env.connected).toBe(true);
    expect(sa.disconnected).toBeNull();
    expect(se.disconnected).toBeNull();
    // …and they cannot come back.
    expect((await refusal(server, { token: RACK_B, node: 'gpu-b-01' })).message).toBe('invalid agent token');
    expect((await refusal(server, { token: DGX, node: 'dgx-01' })).data?.code).toBe('UNAUTHORIZED');
  });
});

describe('agent-auth units', () => {
  it('token buckets: burst, refill, and a bound on the keys kept', () => {
    const b = new TokenBuckets({ burst: 3, perSecond: 1 }, 100);
    expect([1, 2, 3, 4].map(() => b.take('k', 0))).toEqual([true, true, true, false]);
    expect(b.take('k', 999)).toBe(false);
    expect(b.take('k', 1000)).toBe(true);
    expect(b.take('other', 1000)).toBe(true);
    for (let i = 0; i < 1000; i++) b.take(`addr-${i}`, 2000);
    expect(b.size).toBeLessThanOrEqual(100);
  });

  it('per-address keys: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64', () => {
    expect(addressKey('10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('2001:db8:aa:bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(addressKey('2001:db8:aa:bb::9')).toBe('2001:db8:aa:bb::/64');
    expect(addressKey('2001:0db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });

  it('once per interval per source, with the count held back', () => {
    const o = new OncePerInterval(60_000, 10);
    expect(o.check('a', 0)).toEqual({ suppressed: 0 });
    expect(o.check('a', 1000)).toBeNull();
    expect(o.check('a', 2000)).toBeNull();
    expect(o.check('b', 2000)).toEqual({ suppressed: 0 });
    expect(o.check('a', 60_000)).toEqual({ suppressed: 2 });
    for (let i = 0; i < 100; i++) o.check(`s-${i}`, 70_000);
    expect(o.check('s-99', 70_001)).toBeNull();
  });

  it('authority: env tokens are unbound, entries match their globs, several entries add up', () => {
    const agents = [
      { name: 'rack-a', sha256: sha('t1'), nodes: ['gpu-a-*'] },
      { name: 'dots', sha256: sha('t2'), nodes: ['*'] },
    ];
    const auth = new AgentAuthority(['env-token'], { current: { agents }, onChange: () => {} });
    expect(auth.authorize(tokenDigest('env-token'), 'x')).toMatchObject({ ok: true, bound: false });
    expect(auth.authorize(tokenDigest('t1'), 'gpu-a-1')).toEqual({ ok: true, name: 'rack-a', bound: true });
    expect(auth.authorize(tokenDigest('t1'), 'GPU-A-1')).toMatchObject({ ok: false, reason: 'node' });
    expect(auth.authorize(tokenDigest('t1'), 'gpu-a-1/x')).toMatchObject({ ok: false, reason: 'node' });
    expect(auth.authorize(tokenDigest('t2'), '.hidden')).toMatchObject({ ok: true, name: 'dots' });
    expect(auth.authorize(tokenDigest('nope'), 'gpu-a-1')).toEqual({
      ok: false,
      reason: 'token',
      message: 'invalid agent token',
    });
    expect(new AgentAuthority([], null).configured).toBe(false);
  });
});
