import type { AckCallback } from './ack.ts';
import type { FleetDelta, FleetSnapshot, Inventory, SamplesAckData, SamplesReport } from './schemas.ts';
import type { AlertsList, ProjectsMeta, ProjectsUsage } from './usage.ts';

/** Namespace paths. */
export const AGENT_NAMESPACE = '/agent';
export const DASHBOARD_NAMESPACE = '/dashboard';

export interface AgentToServerEvents {
  /** Static inventory, once per connection (and again when it changes). */
  'inventory:report': (inventory: Inventory, ack: AckCallback<{ serverTime: number }>) => void;
  /**
   * One or more samples, each judged on its own: the ack lists the sequence numbers the server
   * took (`acked`) and the samples it refused for good (`rejected`: drop them); the rest were not
   * taken and are resent. A failed ack (`RATE_LIMITED`, `UNAVAILABLE` …) took none of them.
   */
  'samples:report': (report: SamplesReport, ack: AckCallback<SamplesAckData>) => void;
}

export interface ServerNotice {
  level: 'info' | 'warn' | 'error';
  code: string;
  message: string;
}

export interface ServerToAgentEvents {
  /** Something the agent should log (e.g. its clock is off). */
  'server:notice': (notice: ServerNotice) => void;
}

export interface DashboardToServerEvents {
  /** Ask for a fresh snapshot (after a gap, or on demand). */
  'fleet:resync': (ack: AckCallback<FleetSnapshot>) => void;
}

export interface ServerToDashboardEvents {
  /** Sent once on connect: the whole fleet. */
  'fleet:snapshot': (snapshot: FleetSnapshot) => void;
  /** At most once per second: the nodes that changed since the last delta. */
  'fleet:delta': (delta: FleetDelta) => void;
  /** On connect and whenever the projects file is (re)loaded. */
  'projects:meta': (meta: ProjectsMeta) => void;
  /** Every second: live usage per project and cluster totals. */
  'projects:usage': (usage: ProjectsUsage) => void;
  /** On connect: firing and recently resolved alerts. */
  'alerts:snapshot': (alerts: AlertsList) => void;
  /** When alerts fire or resolve: only those that changed. */
  'alerts:changed': (alerts: AlertsList) => void;
}
