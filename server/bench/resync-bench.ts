/**
 * Delta bytes per second with one dashboard resyncing (issue 9 item 6).
 * Run: pnpm --filter @gpupulse/server exec tsx bench/resync-bench.ts
 *
 * An in-process server (memory store) and the simulator (BENCH_NODES, default 100 nodes × 8 GPUs,
 * 1 Hz) as a child process; two dashboards: A only listens, B asks for `fleet:resync` every second
 * (the server grants one per 5 s per socket, RATE_LIMITED otherwise). Over BENCH_SECONDS (default
 * 20) it counts the `fleet:delta` bytes each receives. Before per-client resync, every granted
 * resync switched EVERY dashboard's next delta to full nodes, and resyncs were unlimited: with B
 * asking every second, A (and every other wall) received B's full-delta size every second. That
 * figure is reported as "before" from B's measured full deltas.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARD_NAMESPACE, PROTOCOL_VERSION } from '@gpupulse/protocol';
import { io } from 'socket.io-client';
import { createServer } from '../src/app.ts';

const NODES = Number(process.env.BENCH_NODES ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const sim = fileURLToPath(new URL('../../agent/bin/gpupulse-sim.mjs', import.meta.url));

const dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-resync-bench-'));
const server = await createServer({
  config: { port: 0, host: '127.0.0.1', agentTokens: ['bench'], dataDir },
});
const child = spawn(
  process.execPath,
  [
    sim,
    '--server',
    server.url,
    '--token',
    'bench',
    '--nodes',
    String(NODES),
    '--gpus-per-node',
    '8',
    '--seed',
    '7',
  ],
  { stdio: 'ignore' },
);
const until = Date.now() + 30_000;
while (server.fleet.counts().nodes < NODES && Date.now() < until)
  await new Promise((r) => setTimeout(r, 200));
await new Promise((r) => setTimeout(r, 3000));

function dashboard() {
  const socket = io(server.url + DASHBOARD_NAMESPACE, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    auth: { protocolVersion: PROTOCOL_VERSION },
  });
  const stats = { bytes: 0, deltas: 0, fullDeltas: 0, fullBytes: 0, counting: false };
  socket.io.engine.on('packet', (p: { data?: unknown }) => {
    if (!stats.counting || typeof p.data !== 'string' || !p.data.includes('"fleet:delta"')) return;
    const n = Buffer.byteLength(p.data);
    stats.bytes += n;
    stats.deltas++;
    if (!p.data.includes('"patches":[{')) {
      stats.fullDeltas++;
      stats.fullBytes += n;
    }
  });
  return { socket, stats };
}

const a = dashboard();
const b = dashboard();
await new Promise((r) => setTimeout(r, 2000));
a.stats.counting = b.stats.counting = true;
let granted = 0;
let limited = 0;
const resyncer = setInterval(async () => {
  const ack = await b.socket.timeout(5000).emitWithAck('fleet:resync');
  if (ack.ok) granted++;
  else if (ack.error.code === 'RATE_LIMITED') limited++;
}, 1000);
await new Promise((r) => setTimeout(r, SECONDS * 1000));
clearInterval(resyncer);
a.stats.counting = b.stats.counting = false;

const kb = (n: number) => (n / 1024).toFixed(1);
const fullAvg = b.stats.fullDeltas ? b.stats.fullBytes / b.stats.fullDeltas : 0;
console.log(
  `${NODES} nodes × 8 GPUs, ${SECONDS} s, B asks for a resync every second (${granted} granted, ${limited} RATE_LIMITED)`,
);
console.log(
  `A (listens only):  ${kb(a.stats.bytes / SECONDS)} KB/s of fleet:delta, ${a.stats.fullDeltas} full-node deltas of ${a.stats.deltas}`,
);
console.log(
  `B (resyncing):     ${kb(b.stats.bytes / SECONDS)} KB/s of fleet:delta, ${b.stats.fullDeltas} full-node deltas of ${b.stats.deltas}`,
);
console.log(
  `before (shared encoder, unlimited resync): every dashboard ~${kb(fullAvg)} KB/s (a full-node delta every second)`,
);

a.socket.disconnect();
b.socket.disconnect();
child.kill('SIGTERM');
await server.close();
await rm(dataDir, { recursive: true, force: true });
process.exit(0);
