// gpupulse-sim: many simulated agents, each its own Socket.IO connection to /agent.
import {
  AGENT_NAMESPACE,
  type AgentAuth,
  type AgentToServerEvents,
  type GpuProcess,
  PROTOCOL_VERSION,
  type Sample,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { Command } from 'commander';
import { io, type Socket } from 'socket.io-client';
import { z } from 'zod';
import { backoffDelay } from '../backoff.ts';
import { createLogger } from '../logger.ts';
import { createSimFleet } from './fleet.ts';

const int = (label: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${label} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const SimConfigSchema = z.object({
  server: z.string().url('--server must be a URL such as http://localhost:8080'),
  token: z.string().min(1, '--token is required'),
  nodes: int('--nodes', 1, 100_000),
  gpusPerNode: int('--gpus-per-node', 1, 64),
  interval: int('--interval', 100, 3_600_000),
  prefix: z.string().min(1).max(200),
  seed: int('--seed', 0, 2 ** 32 - 1),
});

const cli = new Command('gpupulse-sim')
  .description('Simulates a fleet of GPU nodes, each one agent connection to a gpupulse server.')
  .option('--server <url>', 'server base URL (env GPUPULSE_SERVER)', process.env.GPUPULSE_SERVER)
  .option('--token <token>', 'agent token (env GPUPULSE_TOKEN)', process.env.GPUPULSE_TOKEN)
  .option('--nodes <n>', 'number of simulated nodes', '16')
  .option('--gpus-per-node <g>', 'GPUs per node', '8')
  .option('--interval <ms>', 'sample interval in ms', '1000')
  .option('--prefix <name>', 'node name prefix (NAME-0001 …)', 'sim')
  .option('--seed <n>', 'random seed (default: random)', String(Math.floor(Math.random() * 2 ** 31)))
  .parse(process.argv);

const parsed = SimConfigSchema.safeParse(cli.opts());
if (!parsed.success) {
  process.stderr.write(
    `gpupulse-sim: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`,
  );
  process.exit(2);
}
const config = parsed.data;
const logger = createLogger({ level: process.env.GPUPULSE_LOG_LEVEL ?? 'info', app: 'gpupulse-sim' }).child({
  component: 'sim',
});
const fleet = createSimFleet({
  nodes: config.nodes,
  gpusPerNode: config.gpusPerNode,
  prefix: config.prefix,
  intervalMs: config.interval,
  seed: config.seed,
});
logger.info(
  { nodes: config.nodes, gpusPerNode: config.gpusPerNode, intervalMs: config.interval, seed: config.seed },
  'gpupulse-sim starting',
);

type AgentSocket = Socket<ServerToAgentEvents, AgentToServerEvents>;
const base = config.server.replace(/\/+$/, '');
const sockets: AgentSocket[] = [];
let sent = 0;
let acked = 0;
let rejected = 0;
/** Reports not taken for now (UNAVAILABLE / RATE_LIMITED / timeout). The sim is a load generator: it does not resend them. */
let refused = 0;
let connected = 0;
const refusals = new Map<string, number>();

fleet.nodeNames.forEach((node, i) => {
  const auth: AgentAuth = {
    token: config.token,
    node,
    protocolVersion: PROTOCOL_VERSION,
    agentVersion: 'sim-0.1.0',
    intervalMs: config.interval,
  };
  const socket: AgentSocket = io(`${base}${AGENT_NAMESPACE}`, {
    auth,
    transports: ['websocket'],
    reconnectionDelay: 1000,
    reconnectionDelayMax: 30_000,
    randomizationFactor: 0.5,
    forceNew: true,
  });
  let failures = 0;
  socket.on('connect', () => {
    connected++;
    failures = 0;
    lastProcesses[i] = undefined; // the server may have missed changes: send the full list
    socket.timeout(10_000).emit('inventory:report', fleet.inventory(i), () => {});
  });
  socket.on('disconnect', () => {
    connected--;
  });
  socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
    const key = `${err.data?.code ?? 'CONNECT_ERROR'}: ${err.data?.message ?? err.message}`;
    const n = refusals.get(key) ?? 0;
    refusals.set(key, n + 1);
    if (n === 0) logger.error({ reason: key }, 'server refused or unreachable');
    if (!socket.active) setTimeout(() => socket.connect(), backoffDelay(failures++, 1000, 30_000));
  });
  sockets.push(socket);
});

// Like real agents, simulated nodes sample on wall-clock interval boundaries (the server's
// deltas are phased to them). Sends are spread over the first few ms of each period so one
// process can drive a thousand connections without one big burst.
const spreadMs = Math.min(100, Math.floor(config.interval / 10));
// Like the real agent, processes are sent only when they change (memory in 1 GiB steps), after a
// (re)connect, and as a full list every minute; otherwise the key is left out (= no change).
const lastProcesses: (string | undefined)[] = [];
const lastFullAt: number[] = [];
const processSignature = (ps: readonly GpuProcess[]) =>
  ps.map((p) => `${p.gpuUuid}/${p.pid}/${Math.round((p.usedMemoryMiB ?? 0) / 1024)}`).join('|');
const send = (i: number) => {
  const socket = sockets[i];
  if (!socket?.connected) return; // never queue while disconnected
  const full = fleet.tick(i);
  const signature = processSignature(full.processes ?? []);
  const now = Date.now();
  let sample: Sample = full;
  if (signature === lastProcesses[i] && now - (lastFullAt[i] ?? 0) < 60_000) {
    const { processes: _unchanged, ...rest } = full;
    sample = rest;
  } else {
    lastProcesses[i] = signature;
    lastFullAt[i] = now;
  }
  sent++;
  socket.timeout(10_000).emit('samples:report', { samples: [sample] }, (err, ack) => {
    if (err) refused++;
    else if (!ack.ok) {
      if (
        ack.error.code === 'UNAVAILABLE' ||
        ack.error.code === 'RATE_LIMITED' ||
        ack.error.code === 'INTERNAL'
      )
        refused++;
      else rejected++;
    } else if (ack.data.acked.length > 0) acked++;
    else rejected++;
  });
};
let roundTimer: NodeJS.Timeout | null = null;
const scheduleRound = () => {
  const now = Date.now();
  const next = Math.floor(now / config.interval) * config.interval + config.interval;
  roundTimer = setTimeout(runRound, next - now);
};
function runRound() {
  scheduleRound();
  const n = sockets.length;
  for (let i = 0; i < n; i++) {
    const delay = Math.floor((i / n) * spreadMs);
    if (delay === 0) send(i);
    else setTimeout(() => send(i), delay); // a stopped sim sends nothing: send() checks the socket
  }
}
scheduleRound();

const stats = setInterval(() => {
  logger.info({ connected, sent, acked, rejected, refused }, 'sim stats');
}, 10_000);

function stop(signal: string) {
  logger.info({ signal, sent, acked, rejected, refused }, 'stopping');
  clearInterval(stats);
  if (roundTimer) clearTimeout(roundTimer);
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(0), 100);
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
