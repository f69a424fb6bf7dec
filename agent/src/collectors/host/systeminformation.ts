// Host metrics on nodes without /proc (Windows GPU workstations, macOS) through systeminformation.
// Linux never loads it: createHostCollector reads /proc there (index.ts), and this module imports
// systeminformation lazily, on start(). Its calls spawn commands on Windows (PowerShell/WMI) and
// can take hundreds of milliseconds, so they run in the background, one refresh at a time, and a
// sample carries the latest finished reading: a slow or hung call never delays a sample.
import os from 'node:os';
import type { HostMetrics } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';
import type { Collector } from '../types.ts';
import { VIRTUAL_IFACE } from './procfs.ts';

type Si = typeof import('systeminformation');

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const rate = (v: unknown): number | null => {
  const n = finite(v);
  return n !== null && n >= 0 ? n : null;
};
const percent = (v: unknown): number | null => {
  const n = finite(v);
  return n === null ? null : Math.min(100, Math.max(0, n));
};
const bytes = (v: unknown): number | null => {
  const n = finite(v);
  return n !== null && n >= 0 ? Math.round(n) : null;
};

export interface SiHostCollectorOptions {
  /** Filesystem usage refresh period (default 60 s). */
  fsRefreshMs?: number;
  /** The longest one refresh may take before its result is dropped and a new one may start (default 10 s). */
  refreshTimeoutMs?: number;
  /** systeminformation itself (tests); default: imported on start(). */
  load?: () => Promise<Si>;
  now?: () => number;
}

/** Loopback and virtual interfaces (also Windows' "Loopback Pseudo-Interface", vEthernet). */
const SKIPPED_IFACE = /^(lo\d*|Loopback|vEthernet)/i;

/** Maps one systeminformation reading to HostMetrics (pure; tested with literal readings). */
export function siToHostMetrics(
  r: {
    load?: Pick<import('systeminformation').Systeminformation.CurrentLoadData, 'currentLoad' | 'cpus'> | null;
    mem?: Pick<
      import('systeminformation').Systeminformation.MemData,
      'total' | 'available' | 'swaptotal' | 'swapused'
    > | null;
    net?: ReadonlyArray<
      Pick<import('systeminformation').Systeminformation.NetworkStatsData, 'iface' | 'rx_sec' | 'tx_sec'>
    >;
    disk?: Pick<import('systeminformation').Systeminformation.FsStatsData, 'rx_sec' | 'wx_sec'> | null;
    fs?: ReadonlyArray<
      Pick<
        import('systeminformation').Systeminformation.FsSizeData,
        'mount' | 'type' | 'size' | 'used' | 'available'
      >
    >;
  },
  platform: NodeJS.Platform = process.platform,
): HostMetrics {
  const netInterfaces: NonNullable<HostMetrics['netInterfaces']> = [];
  let rx: number | null = null;
  let tx: number | null = null;
  for (const n of r.net ?? []) {
    if (SKIPPED_IFACE.test(n.iface) || VIRTUAL_IFACE.test(n.iface)) continue;
    const a = rate(n.rx_sec);
    const b = rate(n.tx_sec);
    if (a !== null) rx = (rx ?? 0) + a;
    if (b !== null) tx = (tx ?? 0) + b;
    if (netInterfaces.length < 256)
      netInterfaces.push({
        name: n.iface.slice(0, LIMITS.maxNameLength) || '?',
        rxBytesPerSec: a,
        txBytesPerSec: b,
      });
  }
  const total = bytes(r.mem?.total);
  const available = bytes(r.mem?.available);
  const cores = (r.load?.cpus ?? []).map((c) => percent(c.load));
  // Windows has no load average (node:os gives zeros): unknown, not 0.
  const [l1, l5, l15] = platform === 'win32' ? [null, null, null] : os.loadavg();
  const host: HostMetrics = {
    cpuPercent: percent(r.load?.currentLoad),
    memoryUsedBytes: total !== null && available !== null ? Math.max(0, total - available) : null,
    memoryTotalBytes: total,
    load1: finite(l1),
    load5: finite(l5),
    load15: finite(l15),
    netRxBytesPerSec: rx,
    netTxBytesPerSec: tx,
    uptimeSeconds: finite(os.uptime()),
    swapUsedBytes: bytes(r.mem?.swapused),
    swapTotalBytes: bytes(r.mem?.swaptotal),
    netInterfaces,
    diskReadBytesPerSec: rate(r.disk?.rx_sec),
    diskWriteBytesPerSec: rate(r.disk?.wx_sec),
  };
  if (cores.length > 0 && cores.length <= 1024 && cores.every((c) => c !== null))
    host.cpuPerCorePercent = cores as number[];
  if (r.fs)
    host.filesystems = r.fs.slice(0, 128).map((f) => ({
      mount: f.mount.slice(0, LIMITS.maxTextLength),
      fsType: f.type ? f.type.slice(0, 64) : null,
      sizeBytes: bytes(f.size),
      usedBytes: bytes(f.used),
      availableBytes: bytes(f.available),
    }));
  return host;
}

const MAX_OUTSTANDING = 3;

/** Waits for `p`, but no longer than `ms`. */
function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** The host collector through systeminformation (non-Linux nodes). */
export function createSiHostCollector(options: SiHostCollectorOptions = {}): Collector {
  const fsRefreshMs = options.fsRefreshMs ?? 60_000;
  const refreshTimeoutMs = options.refreshTimeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  const load = options.load ?? (() => import('systeminformation'));
  let si: Si | null = null;
  let latest: HostMetrics | null = null;
  let fs: Parameters<typeof siToHostMetrics>[0]['fs'];
  let fsAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | null = null;
  let inFlightSince = 0;
  /** Refreshes not finished yet (hung ones included): at most `MAX_OUTSTANDING` at a time. */
  let outstanding = 0;

  const settle = <T>(p: Promise<T>): Promise<T | null> => p.then((v) => v ?? null).catch(() => null);

  const refresh = (): Promise<void> => {
    const lib = si;
    if (!lib || outstanding >= MAX_OUTSTANDING) return Promise.resolve();
    outstanding++;
    const withFs = now() - fsAt >= fsRefreshMs;
    if (withFs) fsAt = now();
    const run = Promise.all([
      settle(lib.currentLoad()),
      settle(lib.mem()),
      settle(lib.networkStats('*')),
      settle(lib.fsStats()),
      withFs ? settle(lib.fsSize()) : Promise.resolve(null),
    ]).then(([l, m, n, d, f]) => {
      if (f) fs = f;
      latest = siToHostMetrics({ load: l, mem: m, net: n ?? [], disk: d, fs });
    });
    inFlightSince = now();
    const tracked = run.finally(() => {
      outstanding--;
      if (inFlight === tracked) inFlight = null;
    });
    inFlight = tracked;
    return tracked;
  };

  return {
    name: 'host',
    async start() {
      si = await load();
      // The first currentLoad() measures a baseline (~0.5 s); the second reading has rates. Bounded:
      // a hung call leaves the first samples without host metrics, never without samples.
      await within(refresh(), refreshTimeoutMs);
      await within(refresh(), refreshTimeoutMs);
    },
    async collect() {
      // A refresh still running after the timeout is left to finish on its own; a new one may start.
      if (inFlight === null || now() - inFlightSince > refreshTimeoutMs) void refresh();
      return { host: latest };
    },
    fallback: () => ({ host: null }),
  };
}
