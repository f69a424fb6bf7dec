// Host metrics straight from /proc (cheap reads + pure parsers in procfs.ts): CPU total and per
// core, memory and swap, load, network per interface, disk I/O, uptime every tick; filesystem usage
// (statfs, can hang on a dead NFS server) refreshed in the background every `fsRefreshMs`.
// systeminformation is not used on Linux (its per-call costs, and si.graphics(), which runs nvidia-smi
// through execSync, stay out of this path); nodes without /proc (Windows, macOS) get the
// systeminformation collector of ./systeminformation.ts instead, loaded only there.
import { readFileSync } from 'node:fs';
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { HostMetrics } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';
import type { Collector } from '../types.ts';
import {
  COUNTED_DISK,
  type CpuTimes,
  cpuPercent,
  parseDiskstats,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseProcStat,
  ratePerSec,
  VIRTUAL_IFACE,
} from './procfs.ts';
import { createSiHostCollector, type SiHostCollectorOptions } from './systeminformation.ts';

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Sums rx/tx bytes per second over non-loopback interfaces; null when no interface reports a rate yet. */
export function sumNetworkRates(
  stats: ReadonlyArray<{ iface: string; rx_sec: number | null; tx_sec: number | null }>,
  loopback: ReadonlySet<string> = new Set(['lo']),
): { rx: number | null; tx: number | null } {
  let rx: number | null = null;
  let tx: number | null = null;
  for (const s of stats) {
    if (loopback.has(s.iface) || s.iface.startsWith('lo')) continue;
    const r = finite(s.rx_sec);
    const t = finite(s.tx_sec);
    if (r !== null && r >= 0) rx = (rx ?? 0) + r;
    if (t !== null && t >= 0) tx = (tx ?? 0) + t;
  }
  return { rx, tx };
}

export interface HostCollectorOptions {
  /**
   * Where host metrics come from: `/proc` (Linux, the default there) or systeminformation (the
   * default elsewhere: Windows GPU workstations, macOS).
   */
  source?: 'procfs' | 'systeminformation';
  /** Root of /proc (tests). */
  proc?: string;
  /** Filesystem usage refresh period (default 60 s). */
  fsRefreshMs?: number;
  /** Timeout of one statfs (a hung NFS mount must not pile up calls). Default 2 s. */
  statfsTimeoutMs?: number;
  now?: () => number;
}

type Filesystem = NonNullable<HostMetrics['filesystems']>[number];

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

function readProcSync(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function createHostCollector(options: HostCollectorOptions = {}): Collector {
  const source = options.source ?? (process.platform === 'linux' ? 'procfs' : 'systeminformation');
  if (source === 'systeminformation') {
    const o: SiHostCollectorOptions = {};
    if (options.fsRefreshMs !== undefined) o.fsRefreshMs = options.fsRefreshMs;
    if (options.now) o.now = options.now;
    return createSiHostCollector(o);
  }
  const proc = options.proc ?? '/proc';
  const fsRefreshMs = options.fsRefreshMs ?? 60_000;
  const statfsTimeoutMs = options.statfsTimeoutMs ?? 2_000;
  const now = options.now ?? Date.now;

  let prevAt = 0;
  let prevCpu: CpuTimes | null = null;
  let prevCores: CpuTimes[] = [];
  let prevNet = new Map<string, { rx: number; tx: number }>();
  let prevDisk: { read: number; written: number } | null = null;
  let filesystems: Filesystem[] | undefined;
  let fsAt = 0;
  let fsRefreshing = false;
  const hungMounts = new Set<string>();

  const statfsWithTimeout = (mount: string) =>
    new Promise<Awaited<ReturnType<typeof statfs>> | null>((resolve) => {
      const t = setTimeout(() => {
        hungMounts.add(mount);
        resolve(null);
      }, statfsTimeoutMs);
      statfs(mount).then(
        (s) => {
          clearTimeout(t);
          hungMounts.delete(mount);
          resolve(s);
        },
        () => {
          clearTimeout(t);
          resolve(null);
        },
      );
    });

  const refreshFilesystems = async (): Promise<void> => {
    if (fsRefreshing) return;
    fsRefreshing = true;
    fsAt = now();
    try {
      const mounts = parseMounts((await readText(join(proc, 'self/mounts'))) ?? '').slice(0, 128);
      const out: Filesystem[] = [];
      for (const m of mounts) {
        if (hungMounts.has(m.mount)) {
          out.push({
            mount: m.mount,
            fsType: m.fsType,
            sizeBytes: null,
            usedBytes: null,
            availableBytes: null,
          });
          continue;
        }
        const s = await statfsWithTimeout(m.mount);
        const bsize = s ? Number(s.bsize) : 0;
        out.push({
          mount: m.mount.slice(0, LIMITS.maxTextLength),
          fsType: m.fsType,
          sizeBytes: s ? Number(s.blocks) * bsize : null,
          usedBytes: s ? (Number(s.blocks) - Number(s.bfree)) * bsize : null,
          availableBytes: s ? Number(s.bavail) * bsize : null,
        });
      }
      filesystems = out;
    } finally {
      fsRefreshing = false;
    }
  };

  const read = async (): Promise<HostMetrics> => {
    // Kernel-generated text that never blocks: read synchronously (one syscall sequence each,
    // ~20 µs) rather than through the thread pool (four round trips each).
    const stat = readProcSync(join(proc, 'stat'));
    const meminfo = readProcSync(join(proc, 'meminfo'));
    const netdev = readProcSync(join(proc, 'net/dev'));
    const diskstats = readProcSync(join(proc, 'diskstats'));
    const t = now();
    const seconds = prevAt ? (t - prevAt) / 1000 : 0;

    const cpu = stat ? parseProcStat(stat) : { total: null, cores: [] };
    const cpuTotal = cpuPercent(prevCpu, cpu.total);
    const perCore = cpu.cores.map((c, i) => cpuPercent(prevCores[i], c));
    prevCpu = cpu.total;
    prevCores = cpu.cores;

    const mem = meminfo ? parseMeminfo(meminfo) : {};
    const total = finite(mem.MemTotal);
    const available = finite(mem.MemAvailable ?? (mem.MemFree ?? 0) + (mem.Cached ?? 0) + (mem.Buffers ?? 0));
    const swapTotal = finite(mem.SwapTotal);
    const swapFree = finite(mem.SwapFree);

    const net = netdev ? parseNetDev(netdev) : new Map<string, { rx: number; tx: number }>();
    const netInterfaces: NonNullable<HostMetrics['netInterfaces']> = [];
    let rxSum: number | null = null;
    let txSum: number | null = null;
    for (const [name, v] of net) {
      if (VIRTUAL_IFACE.test(name)) continue;
      const before = prevNet.get(name);
      const rx = ratePerSec(before?.rx, v.rx, seconds);
      const tx = ratePerSec(before?.tx, v.tx, seconds);
      if (rx !== null) rxSum = (rxSum ?? 0) + rx;
      if (tx !== null) txSum = (txSum ?? 0) + tx;
      if (netInterfaces.length < 256)
        netInterfaces.push({
          name: name.slice(0, LIMITS.maxNameLength),
          rxBytesPerSec: rx,
          txBytesPerSec: tx,
        });
    }
    prevNet = net;

    let diskRead: number | null = null;
    let diskWrite: number | null = null;
    if (diskstats) {
      let read = 0;
      let written = 0;
      for (const [name, v] of parseDiskstats(diskstats)) {
        if (!COUNTED_DISK.test(name)) continue;
        read += v.read;
        written += v.written;
      }
      diskRead = ratePerSec(prevDisk?.read, read, seconds);
      diskWrite = ratePerSec(prevDisk?.written, written, seconds);
      prevDisk = { read, written };
    }
    prevAt = t;

    if (!fsRefreshing && t - fsAt >= fsRefreshMs) void refreshFilesystems();

    const [l1, l5, l15] = os.loadavg();
    const host: HostMetrics = {
      cpuPercent: cpuTotal,
      memoryUsedBytes: total !== null && available !== null ? total - available : null,
      memoryTotalBytes: total,
      load1: finite(l1),
      load5: finite(l5),
      load15: finite(l15),
      netRxBytesPerSec: rxSum,
      netTxBytesPerSec: txSum,
      uptimeSeconds: finite(os.uptime()),
      cpuPerCorePercent: perCore.every((v) => v !== null) ? (perCore as number[]) : undefined,
      swapUsedBytes: swapTotal !== null && swapFree !== null ? swapTotal - swapFree : null,
      swapTotalBytes: swapTotal,
      netInterfaces,
      diskReadBytesPerSec: diskRead,
      diskWriteBytesPerSec: diskWrite,
    };
    if (filesystems) host.filesystems = filesystems;
    return host;
  };

  return {
    name: 'host',
    async start() {
      // A first reading so that the first sample already has rates; filesystems in the background.
      await read();
      await refreshFilesystems();
    },
    async collect() {
      return { host: await read() };
    },
    fallback: () => ({ host: null }),
  };
}
