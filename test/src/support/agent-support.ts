// Helpers for the agent's cross-package tests (delivery, attribution) and the agent benchmark.
import { type ServerProc, startServer } from './processes.ts';

/** `startServer` on a given port (again on the port of one that was stopped: agents reconnect there). */
export function startServerOnPort(port: number, env: Record<string, string> = {}): Promise<ServerProc> {
  return startServer(env, { port });
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
