// Composition root: the only place that reads process.env and picks real implementations.
import { access, constants, mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SampleSchema } from '@gpupulse/protocol';
import { Command, Option } from 'commander';
import { createAgent } from './agent.ts';
import { createCollectors } from './collectors/index.ts';
import { type AgentConfig, ConfigError, resolveConfig } from './config.ts';
import { collectInventory } from './inventory.ts';
import { createLogger } from './logger.ts';
import { AGENT_VERSION } from './version.ts';

function buildCli(): Command {
  return new Command('gpupulse-agent')
    .description('Streams GPU (nvidia-smi) and host metrics of this node to a gpupulse server.')
    .version(AGENT_VERSION)
    .option('--server <url>', 'server base URL, e.g. http://gpupulse:8080 (env GPUPULSE_SERVER)')
    .option('--token <token>', 'agent token accepted by the server (env GPUPULSE_TOKEN)')
    .option('--node <name>', 'node name (env GPUPULSE_NODE; default: hostname)')
    .option('--interval <ms>', 'sampling interval in ms (env GPUPULSE_INTERVAL_MS; default 1000)')
    .option('--nvidia-smi <path>', 'nvidia-smi binary (env GPUPULSE_NVIDIA_SMI; default: nvidia-smi on PATH)')
    .option('--spool-dir <dir>', 'directory for the unsent-sample spool (env GPUPULSE_SPOOL_DIR)')
    .option('--once', 'collect one sample, print it as JSON on stdout, exit')
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
      '\nFlags win over environment variables. Logs go to stderr as JSON lines; with --once stdout holds only the sample.\nRelative paths are relative to the working directory (agent/ when run through `pnpm agent`).',
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

async function run(config: AgentConfig): Promise<number> {
  const logger = createLogger({
    level: config.once ? (config.logLevel === 'info' ? 'warn' : config.logLevel) : config.logLevel,
  });
  if (config.spoolDir) {
    const dir = await checkSpoolDir(config.spoolDir);
    logger.info({ spoolDir: dir }, 'spool dir accepted; samples are kept in memory in this version');
  }
  const { collectors, nvidiaSmi } = createCollectors({
    nvidiaSmi: config.nvidiaSmi,
    intervalMs: config.intervalMs,
    logger,
  });
  const agent = createAgent({
    node: config.node,
    intervalMs: config.intervalMs,
    collectors,
    logger,
    server: config.server && config.token ? { url: config.server, token: config.token } : undefined,
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

  logger.info(
    { node: config.node, server: config.server, intervalMs: config.intervalMs, nvidiaSmi: config.nvidiaSmi },
    'gpupulse-agent starting',
  );
  agent.start();
  await new Promise<void>((resolveStop) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolveStop();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await agent.stop(3_000);
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
