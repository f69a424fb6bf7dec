import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentBin, fakeNvidiaSmi, serverBin, simBin } from './paths.ts';
import { freePort, waitFor } from './wait.ts';

export interface Proc {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null if killed by signal). */
  stop(graceMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

const live = new Set<Proc>();

export function startProcess(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, {
    env: { ...process.env, GPUPULSE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const proc: Proc = {
    child,
    output: () => out,
    exited,
    async stop(graceMs = 5000) {
      live.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  live.add(proc);
  return proc;
}

/** Stops every process a test started and did not stop itself. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(2000)));
}

export interface ServerProc extends Proc {
  url: string;
  port: number;
  dataDir: string;
}

export const AGENT_TOKEN = 'test-token-1';

/**
 * Starts `gpupulse-server` as a user would (env contract of DESIGN.md) and waits for
 * /api/v1/health. `port`: a chosen port (default a free one) — e.g. the port of a server that was
 * stopped, so clients reconnect to the same URL. `dataDir`: kept by the caller across restarts;
 * otherwise a temp dir removed by `stop()`. `entry`: the script node runs (default the development
 * entry server/bin, TypeScript through tsx; e.g. the production bundle server/dist/gpupulse-server.mjs).
 */
export async function startServer(
  env: Record<string, string> = {},
  options: { port?: number; dataDir?: string; entry?: string } = {},
): Promise<ServerProc> {
  const port = options.port ?? (await freePort());
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'gpupulse-server-')));
  // Without an access file of its own, a test server lets anonymous visitors be viewers (user
  // names, jobs, processes), as the views under test show them; GPUPULSE_ACCESS_FILE: '' gives
  // the server's own default (anonymous display).
  const defaultAccess = join(dataDir, 'access-test-default.yaml');
  if (!('GPUPULSE_ACCESS_FILE' in env)) await writeFile(defaultAccess, 'anonymous: viewer\n');
  const proc = startProcess(process.execPath, [options.entry ?? serverBin], {
    GPUPULSE_AGENT_TOKENS: `${AGENT_TOKEN},second-token`,
    GPUPULSE_DATA_DIR: dataDir,
    ...('GPUPULSE_ACCESS_FILE' in env ? {} : { GPUPULSE_ACCESS_FILE: defaultAccess }),
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
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

export interface AgentOptions {
  server: string;
  node: string;
  token?: string;
  intervalMs?: number;
  capture?: string;
  state?: 'idle' | 'load';
  mode?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
}

/** Starts `gpupulse-agent` against the fake nvidia-smi replaying a capture. */
export function startAgent(o: AgentOptions): Proc {
  return startProcess(
    process.execPath,
    [
      agentBin,
      '--server',
      o.server,
      '--token',
      o.token ?? AGENT_TOKEN,
      '--node',
      o.node,
      '--interval',
      String(o.intervalMs ?? 500),
      '--nvidia-smi',
      fakeNvidiaSmi,
      ...(o.extraArgs ?? []),
    ],
    {
      FAKE_NVIDIA_SMI_CAPTURE: o.capture ?? 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt',
      FAKE_NVIDIA_SMI_STATE: o.state ?? 'load',
      FAKE_NVIDIA_SMI_MODE: o.mode ?? 'ok',
      ...o.env,
    },
  );
}

export function startSim(server: string, args: string[] = []): Proc {
  return startProcess(process.execPath, [simBin, '--server', server, '--token', AGENT_TOKEN, ...args]);
}
