import type { FleetDelta, FleetSnapshot } from '@gpupulse/protocol';
import { onScopeDispose } from 'vue';
import { type DashboardSocket, getDashboardSocket } from '../services/socket.ts';
import { useFleetStore } from '../stores/fleet.ts';

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

  function resync(): void {
    socket.emit('fleet:resync', (ack) => {
      if (ack.ok) fleet.applySnapshot(ack.data);
    });
  }

  const onSnapshot = (snapshot: FleetSnapshot) => {
    fleet.applySnapshot(snapshot);
  };
  const onDelta = (delta: FleetDelta) => {
    if (!fleet.hasSnapshot) {
      resync();
      return;
    }
    fleet.applyDelta(delta);
  };
  const onConnect = () => fleet.setConnection('connected');
  const onDisconnect = () => {
    // `active`: the client will retry by itself (anything but an explicit disconnect).
    fleet.setConnection(socket.active ? 'reconnecting' : 'disconnected');
  };
  const onConnectError = () => {
    fleet.setConnection(socket.active ? 'reconnecting' : 'disconnected');
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
    socket.off('fleet:snapshot', onSnapshot);
    socket.off('fleet:delta', onDelta);
    socket.off('connect', onConnect);
    socket.off('disconnect', onDisconnect);
    socket.off('connect_error', onConnectError);
  });

  return { resync };
}
