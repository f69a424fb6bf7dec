import { type Logger as PinoLogger, pino } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  level?: string;
  /** File descriptor to write to; 2 (stderr) keeps stdout free for `--once` JSON. */
  fd?: number;
  /** `app` field of every line. Default gpupulse-agent. */
  app?: string;
}

/** A pino logger writing JSON lines to stderr. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const app = options.app ?? 'gpupulse-agent';
  return pino(
    { level: options.level ?? 'info', base: { app } },
    pino.destination({ dest: options.fd ?? 2, sync: true }),
  );
}

/** A logger that drops everything (tests, library use). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
