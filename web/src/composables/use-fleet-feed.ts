import type { ConnectErrorData, FleetDelta, FleetSnapshot } from '@gpupulse/protocol';
import { nextTick, onScopeDispose } from 'vue';
import { recordDuration } from '../lib/perf-probe.ts';
import { type DashboardSocket, getDashboardSocket } from '../services/socket.ts';
import { useFleetStore } from '../stores/fleet.ts';
import { useSessionStore } from '../stores/session.ts';

export interface UseFleetFeedOptions {
  /** Defaults to the app's one dashboard socket. */
  socket?: DashboardSocket;
  /** Default true: connect when the feed starts. */
  autoConnect?: boolean;
}

/**
 * Feeds the fleet store from the dashboard socket: snapshots, deltas and connection state.
 * A delta before any snapshot asks the server for a resync. Listeners go away with the scope.
 */
export function useFleetFeed(options: UseFleetFeedOptions = {}) {
  const socket = options.socket ?? getDashboardSocket();
  const fleet = useFleetStore();
  const session = useSessionStore();
  /** After every (re)connect, until that connection's snapshot: deltas would patch an old fleet. */
  let awaitingSnapshot = true;
  let resyncing = false;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let refusals = 0;

  function resync(): void {
    if (resyncing) return;
    resyncing = true;
    socket.timeout(10_000).emit('fleet:resync', (err, ack) => {
      resyncing = false;
      if (!err && ack.ok) onSnapshot(ack.data);
    });
  }

  const onSnapshot = (snapshot: FleetSnapshot) => {
    awaitingSnapshot = false;
    // Replaces the whole fleet: nodes the new server does not know are not kept.
    fleet.applySnapshot(snapshot);
  };
  const onDelta = (delta: FleetDelta) => {
    if (!fleet.hasSnapshot || awaitingSnapshot) {
      resync();
      return;
    }
    // Main-thread cost of one update: store + every watcher and component it triggers.
    const start = performance.now();
    if (!fleet.applyDelta(delta)) resync(); // a patch for a node we never got in full
    void nextTick().then(() => {
      const end = performance.now();
      try {
        performance.measure('fleet-update', { start, end });
        performance.clearMeasures('fleet-update');
      } catch {
        // measure() options unsupported: the bounded figures still count.
      }
      recordDuration('fleet-update', end - start);
    });
  };
  const onConnect = () => {
    awaitingSnapshot = true;
    refusals = 0;
    session.setRefused(null);
    fleet.setConnection('connected');
  };
  const onDisconnect = () => {
    // `active`: the client will retry by itself (anything but an explicit disconnect).
    fleet.setConnection(socket.active ? 'reconnecting' : 'disconnected');
  };
  const onConnectError = (err: Error & { data?: Partial<ConnectErrorData> }) => {
    // Role `none` (or a revoked token): the page says "sign in" instead of looking broken.
    if (err.data?.code === 'UNAUTHORIZED') session.setRefused(err.data.message ?? err.message);
    if (socket.active) {
      fleet.setConnection('reconnecting');
      return;
    }
    // The server refused the handshake (middleware error): socket.io stops retrying by itself.
    // A wall display must never give up or prompt: retry with a capped backoff, forever.
    fleet.setConnection(fleet.hasSnapshot ? 'reconnecting' : 'disconnected');
    if (retryTimer) clearTimeout(retryTimer);
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(refusals++, 5)) * (0.75 + Math.random() * 0.5);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      socket.connect();
    }, delay);
  };

  socket.on('fleet:snapshot', onSnapshot);
  socket.on('fleet:delta', onDelta);
  socket.on('connect', onConnect);
  socket.on('disconnect', onDisconnect);
  socket.on('connect_error', onConnectError);

  if (socket.connected) fleet.setConnection('connected');
  else if (options.autoConnect !== false) {
    fleet.setConnection('connecting');
    socket.connect();
  }

  onScopeDispose(() => {
    if (retryTimer) clearTimeout(retryTimer);
    socket.off('fleet:snapshot', onSnapshot);
    socket.off('fleet:delta', onDelta);
    socket.off('connect', onConnect);
    socket.off('disconnect', onDisconnect);
    socket.off('connect_error', onConnectError);
  });

  return { resync };
}
