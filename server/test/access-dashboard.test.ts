/**
 * The /dashboard socket under access control: real Socket.IO clients, raw engine frames searched
 * for names, per-client resync, the bound on dashboards, Origin, kiosk cookie revocation.
 */
import { writeFile } from 'node:fs/promises';
import {
  type ConnectErrorData,
  DASHBOARD_NAMESPACE,
  type FleetDelta,
  type FleetSnapshot,
  PROTOCOL_VERSION,
} from '@gpupulse/protocol';
import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import type { GpupulseServer } from '../src/app.ts';
import { accessYaml, startServerWithAccess, TOKENS } from './access-helpers.ts';
import { connectAgent, type DashboardClient, gpu, onCleanup, report, sample, waitFor } from './helpers.ts';

const SECRET_USERS = ['alice-secret', 'bob-secret'];
const SECRET_CMDLINES = ['python train.py --api-key=SK-SECRET-1', 'torchrun --token=SECRET-2'];
const SECRET_JOBS = ['987654321', 'pod-secret-7'];

interface Watched {
  socket: DashboardClient;
  /** Every raw engine.io frame received (text as sent on the wire). */
  frames: string[];
  deltas: FleetDelta[];
  snapshot: Promise<FleetSnapshot>;
}

function watch(
  server: GpupulseServer,
  opts: { token?: string; headers?: Record<string, string> } = {},
): Watched {
  const socket: DashboardClient = io(server.url + DASHBOARD_NAMESPACE, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    auth: { protocolVersion: PROTOCOL_VERSION, ...(opts.token ? { token: opts.token } : {}) },
    extraHeaders: opts.headers,
  });
  onCleanup(() => {
    socket.disconnect();
  });
  const frames: string[] = [];
  socket.io.engine.on('packet', (p: { data?: unknown }) => {
    if (typeof p.data === 'string') frames.push(p.data);
  });
  const deltas: FleetDelta[] = [];
  socket.on('fleet:delta', (d) => deltas.push(d));
  const snapshot = new Promise<FleetSnapshot>((resolve, reject) => {
    socket.once('fleet:snapshot', resolve);
    socket.once('connect_error', reject);
  });
  return { socket, frames, deltas, snapshot };
}

async function refusal(w: Watched): Promise<ConnectErrorData> {
  const err = await w.snapshot.then(
    () => null,
    (e: Error & { data?: ConnectErrorData }) => e,
  );
  expect(err).not.toBeNull();
  return err!.data ?? { code: 'INTERNAL', message: err!.message };
}

async function reportSecrets(server: GpupulseServer, seq: number, util = 50): Promise<void> {
  const agent = await connectAgent(server, { node: 'gpu-01' });
  const s = sample(seq, Date.now(), { gpus: [gpu(0, { utilizationGpuPercent: util }), gpu(1)] });
  s.processes = [
    {
      gpuUuid: gpu(0).uuid,
      pid: 10,
      usedMemoryMiB: 100,
      name: 'python',
      user: SECRET_USERS[0],
      cmdline: SECRET_CMDLINES[0],
      slurmJobId: SECRET_JOBS[0],
    },
    {
      gpuUuid: gpu(1).uuid,
      pid: 11,
      usedMemoryMiB: 100,
      name: 'torchrun',
      user: SECRET_USERS[1],
      cmdline: SECRET_CMDLINES[1],
      k8sPodUid: SECRET_JOBS[1],
    },
  ];
  expect((await report(agent, { samples: [s] })).ok).toBe(true);
}

const secretsIn = (frames: string[]) => {
  const all = frames.join('\n');
  return [...SECRET_USERS, ...SECRET_CMDLINES, ...SECRET_JOBS].filter((x) => all.includes(x));
};

describe('/dashboard access', () => {
  it('display: snapshot, deltas and projects:usage frames carry no user names, job names or command lines; a viewer gets the names', async () => {
    const server = await startServerWithAccess('display');
    await reportSecrets(server, 1);
    const display = watch(server);
    const wall = watch(server, { token: TOKENS.display });
    const viewer = watch(server, { token: TOKENS.viewer });
    await Promise.all([display.snapshot, wall.snapshot, viewer.snapshot]);
    server.tick();
    await reportSecrets(server, 2, 60); // a new agent connection: the node changes, users again in the next delta
    server.tick();
    await waitFor(
      () => display.deltas.length >= 2 && viewer.deltas.length >= 2 && wall.deltas.length >= 2,
      3000,
      'deltas',
    );
    await waitFor(() => display.frames.some((f) => f.includes('projects:usage')), 3000, 'usage frames');
    for (const w of [display, wall]) {
      expect(w.frames.some((f) => f.includes('fleet:snapshot'))).toBe(true);
      expect(w.frames.some((f) => f.includes('fleet:delta'))).toBe(true);
      expect(secretsIn(w.frames)).toEqual([]);
      expect(w.frames.join('')).not.toMatch(/"users"|"jobs"/);
    }
    // The same data reaches a viewer: the search above could find the names if they were sent.
    expect(secretsIn(viewer.frames)).toEqual(expect.arrayContaining([...SECRET_USERS, ...SECRET_JOBS]));
    // Command lines never travel on the socket, whatever the role.
    expect(viewer.frames.join('')).not.toContain(SECRET_CMDLINES[0]);
  });

  it('role none is refused with UNAUTHORIZED and a clear message; an unknown token too', async () => {
    const server = await startServerWithAccess('none');
    const anon = await refusal(watch(server));
    expect(anon.code).toBe('UNAUTHORIZED');
    expect(anon.message).toMatch(/sign in|access_token/);
    const bad = await refusal(watch(server, { token: 'not-a-token' }));
    expect(bad).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/not valid/) });
    await watch(server, { token: TOKENS.display }).snapshot;
  });

  it('a handshake from a foreign Origin is refused; our own origin and no Origin (not a browser) are accepted', async () => {
    const server = await startServerWithAccess('display');
    const evil = watch(server, { headers: { origin: 'http://evil.example' } });
    const err = await evil.snapshot.then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(evil.frames.some((f) => f.includes('fleet:snapshot'))).toBe(false);
    await watch(server, { headers: { origin: server.url } }).snapshot;
    await watch(server).snapshot;
    const allowed = await startServerWithAccess('display', {
      config: { allowedOrigins: ['https://wall.example.org'] },
    });
    await watch(allowed, { headers: { origin: 'https://wall.example.org' } }).snapshot;
  });

  it('kiosk cookie → socket accepted; token removed from the file + reload → disconnected and refused', async () => {
    const server = await startServerWithAccess('none');
    const res = await fetch(`${server.url}/?kiosk=1&access_token=${TOKENS.display}`, { redirect: 'manual' });
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const wall = watch(server, { headers: { cookie } });
    await wall.snapshot;
    const disconnected = new Promise<void>((r) => wall.socket.once('disconnect', () => r()));
    await writeFile(server.accessFile, accessYaml('none').replace(/.*wall-1.*\n/, ''));
    expect(server.access.reload()).toBe(true);
    await disconnected;
    const again = await refusal(watch(server, { headers: { cookie } }));
    expect(again).toMatchObject({ code: 'UNAUTHORIZED', message: expect.stringMatching(/revoked/) });
  });

  it('GPUPULSE_MAX_DASHBOARDS: one more dashboard is refused with a clear message', async () => {
    const server = await startServerWithAccess('display', { config: { maxDashboards: 2 } });
    await watch(server).snapshot;
    await watch(server).snapshot;
    const third = await refusal(watch(server));
    expect(third.code).toBe('UNAVAILABLE');
    expect(third.message).toMatch(/GPUPULSE_MAX_DASHBOARDS/);
  });

  it('a resync sends full nodes to that dashboard alone; the others keep compact patches; resyncs are rate-limited', async () => {
    // Deltas only when the test ticks (no background ticker within the test's time).
    const server = await startServerWithAccess('viewer', {
      config: { resyncMinIntervalMs: 60_000, deltaIntervalMs: 3_600_000 },
    });
    const agents: Awaited<ReturnType<typeof connectAgent>>[] = [];
    for (let i = 0; i < 10; i++)
      agents.push(await connectAgent(server, { node: `gpu-${String(i).padStart(2, '0')}` }));
    const gpus8 = (util: number) =>
      Array.from({ length: 8 }, (_, i) => gpu(i, { utilizationGpuPercent: util }));
    let seq = 1;
    const step = async (util: number) => {
      for (const a of agents)
        await report(a, { samples: [sample(seq, Date.now() + seq, { gpus: gpus8(util) })] });
      seq++;
    };
    await step(10);
    const a = watch(server);
    const b = watch(server);
    await Promise.all([a.snapshot, b.snapshot]);
    server.tick(); // both joined before this tick: full nodes for each, once
    await step(20);
    server.tick(); // both compact now
    await waitFor(() => a.deltas.length === 2 && b.deltas.length === 2, 3000, 'two deltas each');
    expect(a.deltas[1]!.nodes).toEqual([]);
    expect(a.deltas[1]!.patches).toHaveLength(10);

    const resync = await b.socket.timeout(3000).emitWithAck('fleet:resync');
    expect(resync.ok).toBe(true);
    await step(30);
    const before = { a: a.frames.length, b: b.frames.length };
    server.tick();
    await waitFor(() => a.deltas.length === 3 && b.deltas.length === 3, 3000, 'third delta');
    expect(a.deltas[2]!.nodes).toEqual([]);
    expect(a.deltas[2]!.patches).toHaveLength(10);
    expect(b.deltas[2]!.nodes).toHaveLength(10);
    expect(b.deltas[2]!.patches).toEqual([]);
    const bytes = (w: Watched, from: number) =>
      w.frames
        .slice(from)
        .filter((f) => f.includes('fleet:delta'))
        .reduce((n, f) => n + Buffer.byteLength(f), 0);
    const compact = bytes(a, before.a);
    const full = bytes(b, before.b);
    expect(full).toBeGreaterThan(3 * compact);
    // Figures (10 nodes × 8 GPUs, one utilization change per GPU): what each dashboard received.
    console.log(
      `delta bytes per tick with one dashboard resyncing: others ${compact} B (compact), resyncing one ${full} B (full); ` +
        `before this change every dashboard got ${full} B on such a tick`,
    );
    // The next tick: B is compact again.
    await step(40);
    server.tick();
    await waitFor(() => b.deltas.length === 4, 3000, 'fourth delta');
    expect(b.deltas[3]!.nodes).toEqual([]);

    const limited = await b.socket.timeout(3000).emitWithAck('fleet:resync');
    expect(limited).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
  });
});
