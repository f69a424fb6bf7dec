import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';

export interface ManagedInfluxdOptions {
  /** Everything influxd writes goes under here (meta/, data/, wal/, influxd.conf). Created if missing. */
  dataDir: string;
  /** The influxd executable (default `influxd` on PATH). */
  binary?: string;
  logger?: Logger;
  /** Interface to bind (default 127.0.0.1). */
  bindHost?: string;
  /** HTTP port (default: a free one). Fixed ports let a restarted influxd keep its URL. */
  httpPort?: number;
  /** How long to wait for `/ping` (default 30 s). */
  startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL (default 10 s). */
  stopTimeoutMs?: number;
}

export interface ManagedInfluxd {
  /** e.g. `http://127.0.0.1:41234` */
  url: string;
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after the stop timeout. Safe to call twice. */
  stop(): Promise<void>;
}

/** Asks the OS for a free TCP port on `host`. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

const tomlString = (s: string): string => JSON.stringify(s);

/** The influxd 1.x configuration file this module writes. */
export function influxdConfig(o: {
  dataDir: string;
  host: string;
  httpPort: number;
  rpcPort: number;
}): string {
  return [
    'reporting-enabled = false',
    `bind-address = ${tomlString(`${o.host}:${o.rpcPort}`)}`,
    '',
    '[meta]',
    `  dir = ${tomlString(join(o.dataDir, 'meta'))}`,
    '  retention-autocreate = true',
    '  logging-enabled = false',
    '',
    '[data]',
    `  dir = ${tomlString(join(o.dataDir, 'data'))}`,
    `  wal-dir = ${tomlString(join(o.dataDir, 'wal'))}`,
    '  query-log-enabled = false',
    '',
    '[http]',
    '  enabled = true',
    `  bind-address = ${tomlString(`${o.host}:${o.httpPort}`)}`,
    '  log-enabled = false',
    '',
    '[monitor]',
    '  store-enabled = false',
    '',
    '[subscriber]',
    '  enabled = false',
    '',
    '[continuous_queries]',
    '  log-enabled = false',
    '',
  ].join('\n');
}

/**
 * Starts a private InfluxDB 1.x (`influxd -config <file>`) with all its files under `dataDir`, on
 * free ports of 127.0.0.1, and waits until `/ping` answers 204. Several can run at once (one per
 * data dir). Throws with the tail of influxd's output when it does not come up.
 */
export async function startManagedInfluxd(opts: ManagedInfluxdOptions): Promise<ManagedInfluxd> {
  const attempts = opts.httpPort ? 1 : 3;
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastErr = err;
      // A port picked free may have been taken meanwhile by someone else: try new ones.
      if (!(err instanceof Error && /address already in use/i.test(err.message))) break;
    }
  }
  throw lastErr;
}

async function startOnce(opts: ManagedInfluxdOptions): Promise<ManagedInfluxd> {
  const dataDir = resolve(opts.dataDir);
  const host = opts.bindHost ?? '127.0.0.1';
  const binary = opts.binary ?? 'influxd';
  const log = opts.logger;
  await mkdir(dataDir, { recursive: true });
  const httpPort = opts.httpPort ?? (await freePort(host));
  let rpcPort = await freePort(host);
  while (rpcPort === httpPort) rpcPort = await freePort(host);
  const configPath = join(dataDir, 'influxd.conf');
  await writeFile(configPath, influxdConfig({ dataDir, host, httpPort, rpcPort }));

  const child = spawn(binary, ['-config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFLUXDB_REPORTING_DISABLED: 'true' },
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const state: { exited: string | null; spawnError: Error | null } = { exited: null, spawnError: null };
  const exitPromise = new Promise<void>((res) => {
    child.once('exit', (code, signal) => {
      state.exited = code !== null ? `code ${code}` : `signal ${signal}`;
      res();
    });
    child.once('error', (err) => {
      state.spawnError = err;
      state.exited = 'spawn error';
      res();
    });
  });
  const hasExited = () => state.exited !== null;
  // If this process exits without stop(), do not leave influxd behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const url = `http://${host.includes(':') ? `[${host}]` : host}:${httpPort}`;
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const tailText = () => tail.trim().split('\n').slice(-15).join('\n');
  let up = false;
  while (!up) {
    if (state.exited !== null) {
      process.removeListener('exit', killOnExit);
      const why = state.spawnError
        ? `could not run ${binary}: ${state.spawnError.message}`
        : `influxd exited (${state.exited}) before answering /ping`;
      throw new Error(`${why}\n--- influxd output (tail) ---\n${tailText()}`);
    }
    if (Date.now() > deadline) {
      await stopChild(child, exitPromise, hasExited, 2000);
      process.removeListener('exit', killOnExit);
      throw new Error(
        `influxd did not answer ${url}/ping within ${timeoutMs} ms\n--- influxd output (tail) ---\n${tailText()}`,
      );
    }
    try {
      const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel().catch(() => {});
      up = res.status === 204;
    } catch {
      // not yet listening
    }
    if (!up) await new Promise((r) => setTimeout(r, 100));
  }
  log?.info({ url, pid: child.pid, dataDir }, 'managed influxd started');
  let stopping: Promise<void> | null = null;
  return {
    url,
    port: httpPort,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        await stopChild(child, exitPromise, hasExited, opts.stopTimeoutMs ?? 10_000);
        process.removeListener('exit', killOnExit);
        log?.info({ pid: child.pid }, 'managed influxd stopped');
      })();
      return stopping;
    },
  };
}

async function stopChild(
  child: ChildProcess,
  exitPromise: Promise<void>,
  hasExited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  if (hasExited()) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exitPromise.then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut && !hasExited()) {
    child.kill('SIGKILL');
    await exitPromise;
  }
}
