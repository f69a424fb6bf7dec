// gpupulse-sim: many simulated agents, each its own Socket.IO connection to /agent.
import {
  AGENT_NAMESPACE,
  type AgentAuth,
  type AgentToServerEvents,
  PROTOCOL_VERSION,
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
const timers: NodeJS.Timeout[] = [];
let sent = 0;
let acked = 0;
let rejected = 0;
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
  // Stagger nodes over the interval so the server sees a steady stream, not bursts.
  const offset = Math.floor((i / fleet.nodeNames.length) * config.interval);
  timers.push(
    setTimeout(() => {
      const send = () => {
        const sample = fleet.tick(i);
        if (!socket.connected) return; // never queue while disconnected
        sent++;
        socket.timeout(10_000).emit('samples:report', { samples: [sample] }, (err, ack) => {
          if (err || !ack.ok) rejected++;
          else acked++;
        });
      };
      send();
      timers.push(setInterval(send, config.interval));
    }, offset),
  );
});

const stats = setInterval(() => {
  logger.info({ connected, sent, acked, rejected }, 'sim stats');
}, 10_000);

function stop(signal: string) {
  logger.info({ signal, sent, acked }, 'stopping');
  clearInterval(stats);
  for (const t of timers) clearTimeout(t);
  for (const s of sockets) s.disconnect();
  setTimeout(() => process.exit(0), 100);
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
