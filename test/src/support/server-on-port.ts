import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverBin } from './paths.ts';
import { AGENT_TOKEN, type ServerProc, startProcess } from './processes.ts';
import { freePort, waitFor } from './wait.ts';

/**
 * Like `startServer`, but on a port the caller chooses (default: a free one), so a test can stop
 * the server and start a new one on the SAME port — what a browser sees when the server restarts.
 * The data dir is the caller's to keep across restarts (`dataDir`), removed by `stop()` only when
 * this helper created it.
 */
export async function startServerOnPort(
  options: { port?: number; env?: Record<string, string>; dataDir?: string } = {},
): Promise<ServerProc> {
  const port = options.port ?? (await freePort());
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'gpupulse-server-')));
  const proc = startProcess(process.execPath, [serverBin], {
    GPUPULSE_AGENT_TOKENS: `${AGENT_TOKEN},second-token`,
    GPUPULSE_DATA_DIR: dataDir,
    ...options.env,
    GPUPULSE_PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      'server health',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`server exited: ${proc.output()}`);
        const r = await fetch(`${url}/api/v1/health`);
        return r.ok;
      },
      30_000,
      200,
    );
  } catch (err) {
    await proc.stop();
    throw new Error(`${(err as Error).message}\n--- server output ---\n${proc.output()}`);
  }
  const stop = proc.stop;
  return {
    ...proc,
    url,
    port,
    dataDir,
    async stop(graceMs) {
      const code = await stop(graceMs);
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
