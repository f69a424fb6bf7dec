// Host metrics from systeminformation and node:os. si.graphics() stays out of this path: it runs
// nvidia-smi through execSync without a timeout.
import os from 'node:os';
import type { HostMetrics } from '@gpupulse/protocol';
import * as si from 'systeminformation';
import type { Collector } from '../types.ts';

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const rate = (v: unknown): number | null => {
  const n = finite(v);
  return n === null || n < 0 ? null : n;
};

/** Sums rx/tx bytes per second over non-loopback interfaces; null when no interface reports a rate yet. */
export function sumNetworkRates(
  stats: ReadonlyArray<{ iface: string; rx_sec: number | null; tx_sec: number | null }>,
  loopback: ReadonlySet<string> = new Set(['lo']),
): { rx: number | null; tx: number | null } {
  let rx: number | null = null;
  let tx: number | null = null;
  for (const s of stats) {
    if (loopback.has(s.iface) || s.iface.startsWith('lo')) continue;
    const r = rate(s.rx_sec);
    const t = rate(s.tx_sec);
    if (r !== null) rx = (rx ?? 0) + r;
    if (t !== null) tx = (tx ?? 0) + t;
  }
  return { rx, tx };
}

function loopbackNames(): Set<string> {
  const out = new Set<string>(['lo']);
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (addrs?.some((a) => a.internal)) out.add(name);
  }
  return out;
}

export function createHostCollector(): Collector {
  let loopback = loopbackNames();
  return {
    name: 'host',
    async start() {
      // First currentLoad() measures a baseline (~500 ms); networkStats needs two readings for a rate.
      await Promise.all([si.currentLoad(), si.networkStats('*')]);
      loopback = loopbackNames();
    },
    async collect() {
      const [load, mem, net] = await Promise.all([si.currentLoad(), si.mem(), si.networkStats('*')]);
      const { rx, tx } = sumNetworkRates(net, loopback);
      const [l1, l5, l15] = os.loadavg();
      const total = finite(mem.total);
      const available = finite(mem.available);
      const host: HostMetrics = {
        cpuPercent: finite(load.currentLoad),
        memoryUsedBytes: total !== null && available !== null ? total - available : finite(mem.active),
        memoryTotalBytes: total,
        load1: finite(l1),
        load5: finite(l5),
        load15: finite(l15),
        netRxBytesPerSec: rx,
        netTxBytesPerSec: tx,
        uptimeSeconds: finite(os.uptime()),
        cpuPerCorePercent: load.cpus.map((c) => c.load).filter((v) => Number.isFinite(v)),
        swapUsedBytes: finite(mem.swapused),
        swapTotalBytes: finite(mem.swaptotal),
      };
      return { host };
    },
    fallback: () => ({ host: null }),
  };
}
