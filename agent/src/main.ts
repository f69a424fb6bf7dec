// Composition root: the only place that reads process.env and picks real implementations.
import { access, constants, mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SampleSchema } from '@gpupulse/protocol';
import { Command, Option } from 'commander';
import { createAgent } from './agent.ts';
import { runCheck } from './check.ts';
import { createCollectors } from './collectors/index.ts';
import { type AgentConfig, ConfigError, resolveConfig } from './config.ts';
import { collectInventory } from './inventory.ts';
import { createLogger } from './logger.ts';
import type { SampleQueue } from './queue.ts';
import { DiskSpool } from './spool.ts';
import { AGENT_VERSION } from './version.ts';

/** SIGTERM → exit within this long, whatever happens. */
const STOP_DEADLINE_MS = 4_500;

function buildCli(): Command {
  return new Command('gpupulse-agent')
    .description('Streams GPU (nvidia-smi), process and host metrics of this node to a gpupulse server.')
    .version(AGENT_VERSION)
    .option(
      '--server <url[,url…]>',
      'server base URL, e.g. http://gpupulse:8080; several (comma-separated) are tried in order when one is unreachable (env GPUPULSE_SERVER)',
    )
    .option('--ca <file>', 'PEM file of a private CA to trust for https/wss servers (env GPUPULSE_CA)')
    .option('--token <token>', 'agent token accepted by the server (env GPUPULSE_TOKEN)')
    .option('--node <name>', 'node name (env GPUPULSE_NODE; default: hostname)')
    .option('--interval <ms>', 'sampling interval in ms (env GPUPULSE_INTERVAL_MS; default 1000)')
    .option('--nvidia-smi <path>', 'nvidia-smi binary (env GPUPULSE_NVIDIA_SMI; default: nvidia-smi on PATH)')
    .option(
      '--spool-dir <dir>',
      'disk spool for unacked samples, kept across restarts (env GPUPULSE_SPOOL_DIR; default: in memory, 3600 samples)',
    )
    .option(
      '--spool-max-bytes <size>',
      'spool size bound, e.g. 256MiB (env GPUPULSE_SPOOL_MAX_BYTES; default 256MiB)',
    )
    .option(
      '--spool-max-age <duration>',
      'spool age bound, e.g. 24h (env GPUPULSE_SPOOL_MAX_AGE; default 24h)',
    )
    .option(
      '--project-env <names>',
      'comma-separated environment variables read from GPU processes (env GPUPULSE_PROJECT_ENV; default GPUPULSE_PROJECT,PROJECT)',
    )
    .option(
      '--kmsg <path>',
      'kernel log followed for NVIDIA XID errors, or "off" (env GPUPULSE_KMSG; default /dev/kmsg)',
    )
    .option('--config <file>', 'YAML or JSON config file (env GPUPULSE_CONFIG)')
    .option('--once', 'collect one sample, print it as JSON on stdout, exit')
    .option(
      '--check',
      'check collectors, nvidia-smi, GPUs and the server (token), print the result, exit 0/1',
    )
    .addOption(
      new Option('--log-level <level>', 'log level (env GPUPULSE_LOG_LEVEL; default info)').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .addHelpText(
      'after',
      [
        '',
        'Precedence: flags > environment variables > config file > defaults.',
        'Config file keys: server (a URL, comma-separated URLs or a list), ca, token, node, intervalMs, nvidiaSmi, spoolDir, spoolMaxBytes, spoolMaxAge,',
        'projectEnv, kmsg, logLevel.',
        'Logs go to stderr as JSON lines; with --once stdout holds only the sample.',
        'Relative paths are relative to the working directory (agent/ when run through `pnpm agent`).',
      ].join('\n'),
    );
}

async function checkSpoolDir(dir: string): Promise<string> {
  const abs = resolve(dir);
  try {
    await mkdir(abs, { recursive: true });
    await access(abs, constants.W_OK);
  } catch (err) {
    throw new ConfigError(
      `invalid configuration: spool dir ${abs} is not a writable directory (${(err as Error).message})`,
    );
  }
  return abs;
}

/** Reads `--ca`: one or more PEM certificates. */
async function readCa(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(resolve(file), 'utf8');
  } catch (err) {
    throw new ConfigError(
      `invalid configuration: --ca (GPUPULSE_CA): cannot read ${file} (${(err as Error).message})`,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`invalid configuration: --ca (GPUPULSE_CA): ${file} holds no PEM certificate`);
  return pem;
}

async function run(config: AgentConfig): Promise<number> {
  const ca = config.ca ? await readCa(config.ca) : undefined;
  const quiet = config.once || config.check;
  const logger = createLogger({
    level: quiet ? (config.logLevel === 'info' ? 'warn' : config.logLevel) : config.logLevel,
  });
  if (config.check) return runCheck(config, logger, process.stdout, ca);

  let queue: SampleQueue | undefined;
  if (config.spoolDir && !config.once) {
    const dir = await checkSpoolDir(config.spoolDir);
    const spool = new DiskSpool({
      dir,
      maxBytes: config.spoolMaxBytes,
      maxAgeMs: config.spoolMaxAgeMs,
      logger: logger.child({ component: 'spool' }),
    });
    logger.info({ spoolDir: dir, ...spool.opened }, 'spool opened');
    queue = spool;
  }
  const { collectors, nvidiaSmi } = createCollectors({
    nvidiaSmi: config.nvidiaSmi,
    intervalMs: config.intervalMs,
    logger,
    projectEnv: config.projectEnv,
    kmsg: config.kmsg === 'off' ? null : config.kmsg,
  });
  const agent = createAgent({
    node: config.node,
    intervalMs: config.intervalMs,
    collectors,
    logger,
    queue,
    server:
      config.server && config.token
        ? { url: config.server, urls: config.servers, ca, token: config.token }
        : undefined,
    inventory: () => collectInventory(config.node, nvidiaSmi),
  });

  if (config.once) {
    const sample = SampleSchema.parse(await agent.collectOnce());
    process.stdout.write(`${JSON.stringify(sample)}\n`);
    if (agent.transport) {
      agent.transport.start();
      agent.enqueue(sample);
      const sent = await agent.flush(5_000);
      if (!sent) logger.warn('--once: the sample was not acknowledged by the server');
    }
    await agent.stop(0);
    return 0;
  }

  const firstSeq = agent.nextSeq;
  logger.info(
    {
      node: config.node,
      servers: config.servers,
      ca: config.ca ?? null,
      intervalMs: config.intervalMs,
      nvidiaSmi: config.nvidiaSmi,
      spoolDir: config.spoolDir ?? null,
      configFile: config.configFile ?? null,
      firstSeq,
      version: AGENT_VERSION,
    },
    'gpupulse-agent starting',
  );
  agent.start();
  const signal = await new Promise<NodeJS.Signals>((resolveStop) => {
    const onSignal = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolveStop(sig);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  logger.info({ signal }, 'stopping');
  // Whatever hangs, exit 0 within 5 s of SIGTERM (unsent samples stay in the spool, if any).
  setTimeout(() => {
    logger.warn('stop took too long; exiting');
    process.exit(0);
  }, STOP_DEADLINE_MS).unref();
  await agent.stop(config.spoolDir ? 1_500 : 3_000);
  logger.info(
    {
      firstSeq,
      nextSeq: agent.nextSeq,
      acked: agent.transport?.acked ?? 0,
      unsent: agent.queue.size,
      dropped: agent.queue.dropped,
    },
    'stopped',
  );
  return 0;
}

async function main(argv: string[]): Promise<void> {
  const cli = buildCli();
  cli.parse(argv);
  let config: AgentConfig;
  try {
    config = resolveConfig(cli.opts(), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gpupulse-agent: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  try {
    const code = await run(config);
    process.exit(code);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gpupulse-agent: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`gpupulse-agent: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  }
}

await main(process.argv);
