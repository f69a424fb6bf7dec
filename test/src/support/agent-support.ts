// Helpers for the agent's cross-package tests (delivery, attribution) and the agent benchmark.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverBin } from './paths.ts';
import { AGENT_TOKEN, type ServerProc, startProcess } from './processes.ts';
import { waitFor } from './wait.ts';

/**
 * Starts `gpupulse-server` on a given port (e.g. again on the port of one that was stopped, so that
 * agents reconnect to the same URL), with the same env contract as `startServer()`.
 */
export async function startServerOnPort(port: number, env: Record<string, string> = {}): Promise<ServerProc> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-server-'));
  const proc = startProcess(process.execPath, [serverBin], {
    GPUPULSE_AGENT_TOKENS: `${AGENT_TOKEN},second-token`,
    GPUPULSE_DATA_DIR: dataDir,
    ...env,
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
      await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** The agent's JSON log lines (pino, on stderr) with the given `msg`. */
export function agentLogLines(output: string, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg) out.push(o);
    } catch {
      // not a log line
    }
  }
  return out;
}
