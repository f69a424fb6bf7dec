import {
  DASHBOARD_NAMESPACE,
  type DashboardToServerEvents,
  PROTOCOL_VERSION,
  type ServerToDashboardEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';

export type DashboardSocket = Socket<ServerToDashboardEvents, DashboardToServerEvents>;

let socket: DashboardSocket | null = null;

/**
 * The one dashboard socket: `/dashboard` on the page's own origin, created on first use,
 * connected by whoever subscribes (see `useFleetFeed`). Reconnects forever with jittered
 * exponential backoff (0.5 s → 10 s); the server sends a fresh `fleet:snapshot` on every connect.
 */
export function getDashboardSocket(): DashboardSocket {
  socket ??= io(DASHBOARD_NAMESPACE, {
    autoConnect: false,
    reconnection: true,
    reconnectionAttempts: Number.POSITIVE_INFINITY,
    reconnectionDelay: 500,
    reconnectionDelayMax: 10_000,
    randomizationFactor: 0.5,
    timeout: 10_000,
    auth: { protocolVersion: PROTOCOL_VERSION },
  });
  return socket;
}
