import { type ServerProc, startServer } from './processes.ts';

/**
 * `startServer` on a port the caller chooses (default: a free one), so a test can stop the server
 * and start a new one on the SAME port — what a browser sees when the server restarts.
 */
export function startServerOnPort(
  options: { port?: number; env?: Record<string, string>; dataDir?: string } = {},
): Promise<ServerProc> {
  return startServer(options.env, options);
}
