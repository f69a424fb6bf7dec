import { type Logger as PinoLogger, pino } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  level?: string;
  /** File descriptor to write to; 2 (stderr) keeps stdout free for `--once` JSON. */
  fd?: number;
}

/** A pino logger writing JSON lines to stderr. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? 'info', base: { app: 'gpupulse-agent' } },
    pino.destination({ dest: options.fd ?? 2, sync: true }),
  );
}

/** A logger that drops everything (tests, library use). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
