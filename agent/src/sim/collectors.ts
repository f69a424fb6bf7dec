// Simulated collectors: the fleet model (fleet.ts) behind the agent's Collector contract, so that a
// simulated node is the real agent (Runner → queue → SocketTransport) with only nvidia-smi and
// /proc replaced. Like the real ones: one collector for GPUs (and the host), one for compute
// processes, which sends full lists and deltas through protocol's ProcessDeltaEncoder — the same
// policy as the nvidia-smi process collector, and the same rules the server applies them with.
import { type GpuProcess, ProcessDeltaEncoder, type ProcessDeltaOptions } from '@gpupulse/protocol';
import type { Collector } from '../collectors/types.ts';
import type { SimFleet } from './fleet.ts';

export interface SimCollectorOptions extends ProcessDeltaOptions {
  now?: () => number;
}

/**
 * The collectors of simulated node `index`: `sim-gpu` (advances the model one interval: GPU
 * metrics and host) and `sim-processes` (the processes of that interval as a full list or delta).
 * The runner calls them in this order each interval.
 */
export function createSimCollectors(
  fleet: SimFleet,
  index: number,
  options: SimCollectorOptions = {},
): Collector[] {
  const now = options.now ?? Date.now;
  const encoder = new ProcessDeltaEncoder(options);
  // the processes of the latest interval (the model mutates its objects: these are copies)
  let processes: GpuProcess[] = [];
  let ticked = false;
  const gpu: Collector = {
    name: 'sim-gpu',
    async collect() {
      const s = fleet.tick(index, now());
      ticked = true;
      // The model reuses and mutates its objects; a queued sample must keep its own values.
      processes = (s.processes ?? []).map((p) => ({ ...p }));
      return {
        gpuCollector: 'ok',
        gpuError: null,
        gpus: s.gpus.map((g) => ({ ...g })),
        host: s.host,
      };
    },
    fallback: (error) => ({ gpuCollector: 'error', gpuError: error.message, gpus: [] }),
  };
  const procs: Collector = {
    name: 'sim-processes',
    async collect() {
      if (!ticked) return {};
      return encoder.next(processes, now());
    },
    fallback: () => {
      encoder.forceFull();
      return {};
    },
    // a new connection: the server may have missed deltas, the next list is full
    resync: () => encoder.forceFull(),
  };
  return [gpu, procs];
}
