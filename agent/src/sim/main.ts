// gpupulse-sim: a simulated fleet, each node the real agent (Runner + SocketTransport, see
// agents.ts) with simulated collectors, each its own Socket.IO connection to /agent.
import { Command } from 'commander';
import { pino } from 'pino';
import { z } from 'zod';
import { createLogger } from '../logger.ts';
import { DEFAULT_SIM_QUEUE, startSimAgents } from './agents.ts';
import { createSimFleet } from './fleet.ts';

const int = (label: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${label} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const SimConfigSchema = z.object({
  server: z
    .string({ error: '--server is required' })
    .refine(
      (v) => v.split(',').every((u) => z.string().url().safeParse(u.trim()).success),
      '--server must be a URL such as http://localhost:8080 (or URLs, comma-separated, for failover)',
    ),
  token: z.string({ error: '--token is required' }).min(1, '--token is required'),
  nodes: int('--nodes', 1, 100_000),
  gpusPerNode: int('--gpus-per-node', 1, 64),
  interval: int('--interval', 100, 3_600_000),
  prefix: z.string().min(1).max(200),
  seed: int('--seed', 0, 2 ** 32 - 1),
  queue: int('--queue', 1, 86_400),
});

const cli = new Command('gpupulse-sim')
  .description(
    'Simulates a fleet of GPU nodes: each node is the gpupulse agent (its runner and transport, one Socket.IO connection) with simulated collectors.',
  )
  .option(
    '--server <url>',
    'server base URL; URLs comma-separated fail over in order (env GPUPULSE_SERVER)',
    process.env.GPUPULSE_SERVER,
  )
  .option('--token <token>', 'agent token (env GPUPULSE_TOKEN)', process.env.GPUPULSE_TOKEN)
  .option('--nodes <n>', 'number of simulated nodes', '16')
  .option('--gpus-per-node <g>', 'GPUs per node', '8')
  .option('--interval <ms>', 'sample interval in ms', '1000')
  .option('--prefix <name>', 'node name prefix (NAME-0001 …)', 'sim')
  .option('--seed <n>', 'random seed (default: random)', String(Math.floor(Math.random() * 2 ** 31)))
  .option(
    '--queue <samples>',
    'unacked samples each node keeps while the server is away',
    String(DEFAULT_SIM_QUEUE),
  )
  .parse(process.argv);

const parsed = SimConfigSchema.safeParse(cli.opts());
if (!parsed.success) {
  process.stderr.write(
    `gpupulse-sim: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`,
  );
  process.exit(2);
}
const config = parsed.data;
const level = process.env.GPUPULSE_LOG_LEVEL ?? 'info';
const logger = createLogger({ level, app: 'gpupulse-sim' }).child({ component: 'sim' });

// A thousand agents would each log the same line (a server restart: a thousand "disconnected").
// The agents' lines go out once per message text; /stats below says how many there were.
const repeats = new Map<string, number>();
const agentLogger = pino(
  {
    level,
    base: { app: 'gpupulse-sim' },
    hooks: {
      logMethod(args, method) {
        const msg = args.find((a, k) => k > 0 || typeof a === 'string');
        const key = typeof msg === 'string' ? msg : String(args[0]);
        const n = repeats.get(key) ?? 0;
        repeats.set(key, n + 1);
        if (n === 0) method.apply(this, args);
      },
    },
  },
  pino.destination({ dest: 2, sync: true }),
);

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
const sim = startSimAgents({
  fleet,
  server: config.server,
  token: config.token,
  intervalMs: config.interval,
  logger: agentLogger,
  queueCapacity: config.queue,
});

const stats = setInterval(() => {
  const repeated = [...repeats].filter(([, n]) => n > 1).map(([msg, n]) => `${msg} ×${n}`);
  logger.info({ ...sim.stats(), ...(repeated.length > 0 ? { agentLogLines: repeated } : {}) }, 'sim stats');
}, 10_000);

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  clearInterval(stats);
  const cap = setTimeout(() => process.exit(0), 3_000);
  await sim.stop(500).catch(() => undefined);
  logger.info({ signal, ...sim.stats() }, 'stopping');
  clearTimeout(cap);
  process.exit(0);
}
process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));
