import { type Logger, pino } from 'pino';
import type { LogLevel } from './config.ts';

/** The root logger: JSON lines on stdout. Components take `logger.child({ component })`. */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { service: 'gpupulse-server' } });
}

/** A logger that writes nothing (default for tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
