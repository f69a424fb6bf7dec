import {
  applyNodePatch,
  DASHBOARD_NAMESPACE,
  type DashboardToServerEvents,
  type FleetDelta,
  type FleetSnapshot,
  type NodeView,
  type ServerToDashboardEvents,
} from '@gpupulse/protocol';
import { io, type Socket } from 'socket.io-client';

/** A real Socket.IO dashboard client that keeps the fleet as the server describes it. */
export interface TestDashboard {
  socket: Socket<ServerToDashboardEvents, DashboardToServerEvents>;
  nodes: Map<string, NodeView>;
  snapshots: FleetSnapshot[];
  deltas: FleetDelta[];
  close(): void;
}

export function connectDashboard(url: string): TestDashboard {
  const socket: Socket<ServerToDashboardEvents, DashboardToServerEvents> = io(
    `${url}${DASHBOARD_NAMESPACE}`,
    {
      transports: ['websocket'],
      reconnection: false,
    },
  );
  const d: TestDashboard = {
    socket,
    nodes: new Map(),
    snapshots: [],
    deltas: [],
    close: () => socket.close(),
  };
  socket.on('fleet:snapshot', (s) => {
    d.snapshots.push(s);
    d.nodes = new Map(s.nodes.map((n) => [n.node, n]));
  });
  socket.on('fleet:delta', (delta) => {
    d.deltas.push(delta);
    for (const n of delta.nodes) d.nodes.set(n.node, n);
    for (const p of delta.patches ?? []) {
      const prev = d.nodes.get(p.node);
      if (prev) d.nodes.set(p.node, applyNodePatch(prev, p));
      else throw new Error(`fleet:delta patched node ${p.node} that no snapshot or delta sent in full`);
    }
    for (const name of delta.removed) d.nodes.delete(name);
  });
  return d;
}
