import { z } from 'zod';

/** Error codes a server puts in a failed ack or a refused connection. */
export const ErrorCodeSchema = z.enum([
  'UNAUTHORIZED',
  'PROTOCOL_VERSION',
  'VALIDATION',
  'TOO_LARGE',
  'RATE_LIMITED',
  'UNAVAILABLE',
  'INTERNAL',
]);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** With `RATE_LIMITED` / `UNAVAILABLE`: wait at least this long (ms) before resending. */
  retryAfterMs?: number;
}

/** The one reply shape of every request with an ack. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: ProtocolError };
export type AckCallback<T> = (ack: Ack<T>) => void;

export const ok = <T>(data: T): Ack<T> => ({ ok: true, data });
export const fail = (code: ErrorCode, message: string, retryAfterMs?: number): Ack<never> => ({
  ok: false,
  error: retryAfterMs === undefined ? { code, message } : { code, message, retryAfterMs },
});

/** Codes after which the same samples may succeed later: keep them and resend (with backoff). */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set(['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL']);

/** Turns a zod error into one short, safe message: `path: problem; path: problem`. */
export function describeZodError(error: z.ZodError, max = 5): string {
  const parts = error.issues.slice(0, max).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  if (error.issues.length > max) parts.push(`… ${error.issues.length - max} more`);
  return parts.join('; ');
}

/**
 * The `data` a server attaches to a refused Socket.IO connection (`connect_error`'s `err.data`).
 */
export interface ConnectErrorData {
  code: ErrorCode;
  message: string;
}
