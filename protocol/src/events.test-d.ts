import type { Server } from 'socket.io';
import type { Socket } from 'socket.io-client';
import { describe, expectTypeOf, it } from 'vitest';
import type { Ack } from './ack.ts';
import type {
  AgentToServerEvents,
  DashboardToServerEvents,
  ServerToAgentEvents,
  ServerToDashboardEvents,
} from './events.ts';
import type { FleetSnapshot, SamplesAckData } from './schemas.ts';

describe('typed event maps', () => {
  it('agents emit samples:report with a typed ack', () => {
    const socket = {} as Socket<ServerToAgentEvents, AgentToServerEvents>;
    const sample = { seq: 1, ts: 1, gpuCollector: 'ok' as const, gpus: [], host: null };
    expectTypeOf(socket.emit<'samples:report'>).toBeFunction();
    const call = () =>
      socket.emit('samples:report', { samples: [sample] }, (ack) => {
        expectTypeOf(ack).toEqualTypeOf<Ack<SamplesAckData>>();
      });
    expectTypeOf(call).toBeFunction();
    // @ts-expect-error unknown event
    const bad = () => socket.emit('samples:send', { samples: [] });
    // @ts-expect-error wrong payload
    const bad2 = () => socket.emit('samples:report', { sample }, () => {});
    expectTypeOf(bad).toBeFunction();
    expectTypeOf(bad2).toBeFunction();
  });

  it('dashboards receive snapshots and can resync', () => {
    const io = {} as Server<DashboardToServerEvents, ServerToDashboardEvents>;
    const f = () => io.emit('fleet:snapshot', {} as FleetSnapshot);
    // @ts-expect-error dashboards get no samples
    const g = () => io.emit('samples:report', { samples: [] });
    expectTypeOf(f).toBeFunction();
    expectTypeOf(g).toBeFunction();
  });
});
