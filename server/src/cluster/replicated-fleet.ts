import type { Alert, GpuEvent, GpuProcess, Inventory, Sample } from '@gpupulse/protocol';
import {
  FleetState,
  type IngestedSample,
  type IngestOptions,
  type IngestResult,
} from '../fleet/fleet-state.ts';

/**
 * Messages of the fleet channel (`gpupulse:fleet`), server to server only: each process publishes
 * what its own agents did, every other process applies it to its replica. Samples were validated
 * by the process that received them (Redis is inside the service's trust boundary).
 */
export type FleetMessage =
  /** Heartbeat (every second): the sender is alive. */
  | { t: 'h' }
  /** A process (re)joined: owners answer with `f` for each of their nodes. */
  | { t: 'hello' }
  | { t: 'c'; n: string; i: number }
  | { t: 'd'; n: string }
  | { t: 's'; n: string; i: number; s: readonly Sample[]; replay: boolean; record: boolean }
  | { t: 'inv'; n: string; inv: Inventory }
  | { t: 'e'; n: string; ev: GpuEvent[]; gpus: { uuid: string; pciBusId: string | null }[] }
  /** An alert acknowledged on the sender (id as the sender knows it). */
  | { t: 'ack'; id: string; ack: NonNullable<Alert['acknowledged']> }
  /** Full state of one node (answer to `hello`): newest sample with the full process list. */
  | { t: 'f'; n: string; i: number; last: Sample | null; inv: Inventory | null };

/** Samples of another process's node as applied here (kept a few seconds, see `takeRecent`). */
export interface RecentBatch {
  node: string;
  samples: readonly IngestedSample[];
}

/** How long applied remote samples are kept for `takeRecent` (by arrival, in whole seconds). */
const KEEP_SECONDS = 10;

export interface Envelope {
  /** Sender (process id). */
  from: string;
  m: FleetMessage[];
}

/**
 * Fleet state of one process of a cluster: its own agents' nodes (local connections) plus a
 * replica of every other process's nodes (connection id `remote:<owner>`), so dashboards, the
 * fleet API, alerts and usage on any process see the whole fleet.
 *
 * Local changes are handed to `publish` (the cluster batches them onto Redis); `applyRemote`
 * applies another process's messages. A node is local while its agent's socket is here; when
 * it reconnects elsewhere the owner's `c` message replaces the connection (the newest connection
 * wins, as for one process). A silent owner (`ownerGone`) takes its nodes offline here until
 * their agents reconnect to a live process.
 */
export class ReplicatedFleet extends FleetState {
  /** Nodes whose agent is connected to this process → interval. */
  private readonly local = new Map<string, number>();
  /** Newest sample of each local node (for `f`). */
  private readonly newest = new Map<string, Sample>();
  /** Node → the process whose agent it is (remote nodes only). */
  private readonly owners = new Map<string, string>();
  /** Owner → arrival second → samples applied from it (the last KEEP_SECONDS seconds). */
  private readonly recent = new Map<string, Map<number, RecentBatch[]>>();
  publish: (m: FleetMessage) => void = () => {};

  override connect(node: string, connectionId: string, intervalMs?: number): void {
    super.connect(node, connectionId, intervalMs);
    const i = intervalMs ?? 0;
    this.local.set(node, i);
    this.owners.delete(node);
    this.publish({ t: 'c', n: node, i });
  }

  override disconnect(node: string, connectionId: string): void {
    const before = this.view(node)?.connected ?? false;
    super.disconnect(node, connectionId);
    const after = this.view(node)?.connected ?? false;
    if (before && !after && this.local.has(node)) {
      this.local.delete(node);
      this.newest.delete(node);
      this.publish({ t: 'd', n: node });
    }
  }

  override ingest(node: string, samples: readonly Sample[], opts: IngestOptions = {}): IngestResult {
    const r = super.ingest(node, samples, opts);
    const i = this.local.get(node);
    if (i !== undefined && samples.length > 0) {
      const last = r.samples[r.samples.length - 1]!.sample;
      const prev = this.newest.get(node);
      if (!prev || last.ts >= prev.ts) this.newest.set(node, last);
      this.publish({
        t: 's',
        n: node,
        i,
        s: samples,
        replay: opts.replay ?? false,
        record: opts.record ?? true,
      });
    }
    return r;
  }

  override setInventory(node: string, inventory: Inventory): void {
    super.setInventory(node, inventory);
    if (this.local.has(node)) this.publish({ t: 'inv', n: node, inv: inventory });
  }

  /** Nodes of this process's own agents. */
  localNodes(): number {
    return this.local.size;
  }

  /** Nodes replicated from other processes. */
  remoteNodes(): number {
    return this.owners.size;
  }

  /** One `f` message per local node (the answer to `hello`). */
  fullState(): FleetMessage[] {
    const out: FleetMessage[] = [];
    for (const [n, i] of this.local) {
      const last = this.newest.get(n) ?? null;
      const procs: readonly GpuProcess[] = this.processesOf(n);
      out.push({
        t: 'f',
        n,
        i,
        last: last
          ? { ...last, processesMode: 'full', processes: [...procs], processesGone: undefined }
          : null,
        inv: this.inventoryOf(n),
      });
    }
    return out;
  }

  /** Applies one message of process `from` (not this one). */
  applyRemote(from: string, m: FleetMessage): void {
    switch (m.t) {
      case 'c':
        this.adopt(m.n, from, m.i, true);
        return;
      case 'd':
        if (this.owners.get(m.n) === from) {
          this.owners.delete(m.n);
          super.disconnect(m.n, remoteId(from));
        }
        return;
      case 's': {
        if (!this.adopt(m.n, from, m.i, false)) return;
        const r = super.ingest(m.n, m.s, { replay: m.replay, record: m.record });
        // Acked by the owner: kept a few seconds in case the owner dies before storing them.
        if (m.record) this.keep(from, { node: m.n, samples: r.samples });
        return;
      }
      case 'inv':
        if (this.adopt(m.n, from, 0, false)) super.setInventory(m.n, m.inv);
        return;
      case 'f':
        if (!this.adopt(m.n, from, m.i, false)) return;
        if (m.inv) super.setInventory(m.n, m.inv);
        // Live state only: these samples were recorded (rollups) when they first arrived.
        if (m.last) super.ingest(m.n, [m.last], { record: false });
        return;
      default:
        return;
    }
  }

  /**
   * The samples of `owner`'s nodes applied here since `sinceMs` (wall clock of arrival, whole
   * seconds) — what a process that died may have acked without storing yet.
   */
  takeRecent(owner: string, sinceMs: number): RecentBatch[] {
    const out: RecentBatch[] = [];
    const bySecond = this.recent.get(owner);
    if (!bySecond) return out;
    const from = Math.floor(sinceMs / 1000);
    for (const [sec, list] of bySecond) if (sec >= from) out.push(...list);
    return out;
  }

  private keep(owner: string, batch: RecentBatch): void {
    const sec = Math.floor(Date.now() / 1000);
    let bySecond = this.recent.get(owner);
    if (!bySecond) {
      bySecond = new Map();
      this.recent.set(owner, bySecond);
    }
    const list = bySecond.get(sec);
    if (list) list.push(batch);
    else {
      bySecond.set(sec, [batch]);
      for (const old of bySecond.keys()) if (old <= sec - KEEP_SECONDS) bySecond.delete(old);
    }
  }

  /** Takes every node of `owner` offline (its heartbeat stopped); returns how many. */
  ownerGone(owner: string): number {
    this.recent.delete(owner);
    let n = 0;
    for (const [node, o] of this.owners) {
      if (o !== owner) continue;
      this.owners.delete(node);
      super.disconnect(node, remoteId(owner));
      n++;
    }
    return n;
  }

  /**
   * Makes `node` a remote node of `from` unless this process's agent holds it. `reconnect`: a
   * fresh connection there (always wins, as the newest connection does on one process).
   */
  private adopt(node: string, from: string, intervalMs: number, reconnect: boolean): boolean {
    if (reconnect) {
      this.local.delete(node);
      this.newest.delete(node);
    } else if (this.local.has(node)) {
      // A late message from the node's previous process: the live view ignores older samples.
      return this.owners.get(node) === from;
    }
    if (reconnect || this.owners.get(node) !== from) {
      this.owners.set(node, from);
      super.connect(node, remoteId(from), intervalMs > 0 ? intervalMs : undefined);
    }
    return true;
  }
}

const remoteId = (owner: string) => `remote:${owner}`;
