import type { Logger } from 'pino';
import { createClient } from 'redis';

const makeClient = (url: string, name: string) =>
  createClient({
    url,
    name: `gpupulse-${name}`,
    socket: { reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000), connectTimeout: 5000 },
  });

/** A node-redis client as this package uses it (commands, pub/sub, EVAL). */
export type RedisClient = ReturnType<typeof makeClient>;

/**
 * Opens a connected client on `url` (`redis://host:port/db`). Reconnects on its own with a
 * capped backoff (node-redis default strategy, capped at 2 s); errors are logged once per
 * episode instead of once per retry.
 */
export async function connectRedis(url: string, logger: Logger, name: string): Promise<RedisClient> {
  const client = makeClient(url, name);
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger.warn({ err: err.message, redis: redactUrl(url), client: name }, 'Redis connection lost; retrying');
  });
  client.on('ready', () => {
    if (down) logger.info({ redis: redactUrl(url), client: name }, 'Redis connection back');
    down = false;
  });
  await client.connect();
  return client;
}

/** The URL without a password (for logs). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable URL)';
  }
}

/** Closes a client, tolerating one that is already closed or still reconnecting. */
export async function closeRedis(client: RedisClient | null | undefined): Promise<void> {
  if (!client) return;
  try {
    if (client.isOpen) await client.close();
  } catch {
    client.destroy();
  }
}
