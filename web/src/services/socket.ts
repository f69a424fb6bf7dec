import {
  DASHBOARD_NAMESPACE,
  type DashboardToServerEvents,
  PROTOCOL_VERSION,
  type ServerToDashboardEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';

export type DashboardSocket = Socket<ServerToDashboardEvents, DashboardToServerEvents>;

let socket: DashboardSocket | null = null;
let token: string | null | undefined;

/**
 * A token from the page URL (`?token=…`), sent with every request and the socket handshake. The
 * preferred wall link is `?access_token=…`, which the server swaps for a session cookie on the
 * first load (the token then leaves the URL and this returns null); the cookie authenticates
 * everything after that.
 */
export function displayToken(): string | null {
  if (token === undefined) {
    try {
      const t = new URLSearchParams(window.location.search).get('token');
      token = t && t.length <= 512 ? t : null;
    } catch {
      token = null;
    }
  }
  return token;
}

/**
 * The one dashboard socket: `/dashboard` on the page's own origin, created on first use,
 * connected by whoever subscribes (see `useFleetFeed`). Reconnects forever with jittered
 * exponential backoff (0.5 s → 10 s); the server sends a fresh `fleet:snapshot` on every connect.
 */
export function getDashboardSocket(): DashboardSocket {
  const t = displayToken();
  socket ??= io(DASHBOARD_NAMESPACE, {
    autoConnect: false,
    reconnection: true,
    reconnectionAttempts: Number.POSITIVE_INFINITY,
    reconnectionDelay: 500,
    reconnectionDelayMax: 10_000,
    randomizationFactor: 0.5,
    timeout: 10_000,
    auth: t ? { protocolVersion: PROTOCOL_VERSION, token: t } : { protocolVersion: PROTOCOL_VERSION },
  });
  return socket;
}
