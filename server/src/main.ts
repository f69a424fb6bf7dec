/**
 * Composition root of `gpupulse-server`: the only place that reads process.env, picks the storage
 * (InfluxDB, a managed local influxd, or memory) and handles signals.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { AccessFileError, parseAccessFile } from './access/access-file.ts';
import { type AlertsConfig, AlertsConfigError, loadAlertsFile, parseWebhookList } from './alerts/config.ts';
import { createServer, type GpupulseServer } from './app.ts';
import { ConfigError, loadConfig, type ServerConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { InfluxStore } from './storage/influx-store.ts';
import { type ManagedInfluxd, startManagedInfluxd } from './storage/managed-influxd.ts';
import { MEMORY_STORE_WARNING, MemoryStore } from './storage/memory-store.ts';
import type { MetricStore } from './storage/metric-store.ts';

/** Finds an executable: a path as given, or a bare name on PATH. */
export function findExecutable(binary: string, pathEnv = process.env.PATH ?? ''): string | null {
  const candidates =
    isAbsolute(binary) || binary.includes('/')
      ? [binary]
      : pathEnv
          .split(delimiter)
          .filter(Boolean)
          .map((d) => join(d, binary));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

async function main(): Promise<void> {
  let config: ServerConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gpupulse-server: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let alerts: AlertsConfig | undefined;
  if (config.alertsFile) {
    try {
      alerts = loadAlertsFile(config.alertsFile, { webhooks: parseWebhookList(config.webhooks.join(',')) });
    } catch (err) {
      if (err instanceof AlertsConfigError) {
        process.stderr.write(`gpupulse-server: GPUPULSE_ALERTS: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
  }
  if (config.accessFile) {
    // Checked before storage starts: a broken access file must not leave a server half up.
    try {
      parseAccessFile(readFileSync(config.accessFile, 'utf8'), config.accessFile);
    } catch (err) {
      const reason =
        err instanceof AccessFileError
          ? err.message
          : `cannot read ${config.accessFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      process.stderr.write(`gpupulse-server: GPUPULSE_ACCESS_FILE: ${reason}\n`);
      process.exit(2);
    }
  }
  const logger = createLogger(config.logLevel);
  const log = logger.child({ component: 'main' });

  if (config.projectsFile) {
    if (existsSync(config.projectsFile)) {
      log.info({ projectsFile: config.projectsFile }, 'projects file (watched; reloaded on change)');
    } else {
      log.warn({ projectsFile: config.projectsFile }, 'GPUPULSE_PROJECTS points to a missing file');
    }
  }

  const storeLog = logger.child({ component: 'storage' });
  let managed: ManagedInfluxd | null = null;
  let store: MetricStore;
  if (config.influx.url) {
    const influx = new InfluxStore({
      url: config.influx.url,
      database: config.influx.database,
      token: config.influx.token,
      username: config.influx.username,
      password: config.influx.password,
      kind: 'influxdb',
      logger: storeLog,
    });
    try {
      await influx.init();
      storeLog.info({ url: influx.origin, database: config.influx.database }, 'storage: InfluxDB');
    } catch (err) {
      storeLog.error(
        { err: (err as Error).message, url: influx.origin },
        'InfluxDB is not reachable at start; samples are buffered and writes retried',
      );
    }
    store = influx;
  } else {
    const binary = findExecutable(config.influx.binary);
    if (binary) {
      try {
        managed = await startManagedInfluxd({
          dataDir: join(config.dataDir, 'influxdb'),
          binary,
          logger: storeLog,
        });
        const influx = new InfluxStore({
          url: managed.url,
          database: config.influx.database,
          kind: 'managed-influxdb',
          logger: storeLog,
        });
        await influx.init();
        store = influx;
        storeLog.info(
          { url: managed.url, dataDir: join(config.dataDir, 'influxdb') },
          'storage: managed influxd',
        );
      } catch (err) {
        await managed?.stop();
        managed = null;
        const reason = (err as Error).message;
        storeLog.error({ err: reason }, 'could not start the managed influxd');
        store = new MemoryStore({
          warning: `${MEMORY_STORE_WARNING}; the managed influxd failed to start`,
          warningCode: 'memory-influxd-failed',
        });
        storeLog.warn(`storage: ${store.info().warning}`);
      }
    } else {
      store = new MemoryStore();
      storeLog.warn(
        { binary: config.influx.binary, warning: MEMORY_STORE_WARNING },
        `storage: IN-MEMORY (no ${config.influx.binary} found): ${MEMORY_STORE_WARNING}`,
      );
    }
  }

  let server: GpupulseServer;
  try {
    server = await createServer({
      config,
      store,
      logger,
      alerts,
      // One ordered shutdown: everything the server started, then the store, then the managed influxd.
      closeAlso: [
        { name: 'store', close: () => store.close() },
        { name: 'managed influxd', close: () => managed?.stop() },
      ],
    });
  } catch (err) {
    log.fatal({ err }, 'could not start the server');
    await store.close();
    await managed?.stop();
    process.exit(1);
  }
  log.info(
    {
      alertRules: server.alerts.engine.ruleIds.length,
      webhooks: server.alerts.webhooks.size,
      spool: server.spool ? server.spool.dir : null,
    },
    'alerts and write spool',
  );
  const access = server.access.current;
  if (config.agentTokens.length === 0 && access.agents.length === 0) {
    log.warn(
      'no agent tokens (GPUPULSE_AGENT_TOKENS, or `agents:` in GPUPULSE_ACCESS_FILE): EVERY agent will be refused. ' +
        'Bind a token to node names in the access file, e.g. agents: [{ name: rack-a, sha256: "<sha256sum of the token>", nodes: ["gpu-a-*"] }], ' +
        'and give agents the token with --token / GPUPULSE_TOKEN.',
    );
  } else if (config.agentTokens.length > 0) {
    log.warn(
      { unboundTokens: config.agentTokens.length },
      'GPUPULSE_AGENT_TOKENS tokens are NOT bound to nodes: whoever holds one can report as any node. ' +
        'Prefer `agents:` entries with `nodes:` globs in GPUPULSE_ACCESS_FILE.',
    );
  }
  if (config.accessFile) {
    log.info(
      {
        accessFile: config.accessFile,
        anonymous: access.anonymous,
        tokens: access.tokens.length,
        agents: access.agents.length,
        oidc: access.oidc !== null,
        trustedProxy: access.trustedProxy !== null,
      },
      'access file (watched; reloaded on change)',
    );
  } else {
    log.info(
      'GPUPULSE_ACCESS_FILE is not set: anonymous visitors get the display role (the fleet without user names, ' +
        'job names or command lines); set an access file for tokens, single sign-on or a trusted proxy',
    );
  }
  if (config.metricsFrom.length > 0)
    log.info({ metricsFrom: config.metricsFrom }, '/metrics open to these addresses');
  if (server.cluster) {
    log.info(
      { process: server.cluster.id, lease: server.lease.held(), peers: server.cluster.peers().length },
      'scale-out: one of several processes over GPUPULSE_REDIS_URL (dashboards and fleet shared; singleton work by the lease holder)',
    );
  }
  log.info(
    { url: server.url, port: server.port, storage: store.info().kind, webDir: config.webDir },
    `gpupulse-server listening on ${server.url}`,
  );

  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    log.info({ signal }, 'shutting down: flushing the write buffer');
    try {
      await server.close();
      log.info('bye');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', (s) => void shutdown(s));
  process.on('SIGINT', (s) => void shutdown(s));
}

await main();
