// Host parsers over literal /proc texts, and the collector on this machine's real /proc.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostMetricsSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { createHostCollector } from './index.ts';
import {
  COUNTED_DISK,
  cpuPercent,
  parseDiskstats,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseProcStat,
  ratePerSec,
  VIRTUAL_IFACE,
} from './procfs.ts';
import { createSiHostCollector, siToHostMetrics } from './systeminformation.ts';

describe('host /proc parsers', () => {
  it('/proc/stat → total and per-core busy %', () => {
    const a = parseProcStat(
      'cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0 0 0\nintr 1\n',
    );
    const b = parseProcStat(
      'cpu  200 0 200 1000 0 0 0 0 0 0\ncpu0 150 0 50 500 0 0 0 0 0 0\ncpu1 50 0 150 500 0 0 0 0 0 0\n',
    );
    expect(cpuPercent(a.total, b.total)).toBe(50);
    expect(b.cores.map((c, i) => cpuPercent(a.cores[i], c))).toEqual([50, 50]);
    expect(cpuPercent(b.total, b.total)).toBeNull();
  });
  it('/proc/meminfo → bytes', () => {
    const m = parseMeminfo(
      'MemTotal:       16384 kB\nMemAvailable:    8192 kB\nSwapTotal:  1024 kB\nSwapFree: 512 kB\nHugePages_Total:       0\n',
    );
    expect(m).toMatchObject({
      MemTotal: 16384 * 1024,
      MemAvailable: 8192 * 1024,
      SwapFree: 512 * 1024,
      HugePages_Total: 0,
    });
  });
  it('/proc/net/dev → per interface; virtual ones recognised', () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 316924454   53136    0    0    0     0          0         0 316924454   53136    0    0    0     0       0          0
  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
ib0: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0
vethab12: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0
`;
    const n = parseNetDev(text);
    expect(n.get('eth0')).toEqual({ rx: 1000, tx: 2000 });
    expect(n.get('ib0')).toEqual({ rx: 5, tx: 7 });
    expect([...n.keys()].filter((k) => !VIRTUAL_IFACE.test(k))).toEqual(['eth0', 'ib0']);
  });
  it('/proc/diskstats → bytes per whole disk', () => {
    const d = parseDiskstats(
      ' 259       0 nvme0n1 100 0 2048 10 200 0 4096 20 0 30 30 0 0 0 0\n 259       1 nvme0n1p1 1 0 8 1 1 0 8 1 0 1 1\n   7       0 loop0 1 0 8 0 0 0 0 0 0 0 0\n 253 0 dm-0 1 0 8 0 1 0 8 0 0 0 0\n',
    );
    expect(d.get('nvme0n1')).toEqual({ read: 2048 * 512, written: 4096 * 512 });
    expect([...d.keys()].filter((k) => COUNTED_DISK.test(k))).toEqual(['nvme0n1']);
  });
  it('/proc/self/mounts → real filesystems once per device, escapes decoded', () => {
    const m = parseMounts(
      '/dev/vda / ext4 rw 0 0\nproc /proc proc rw 0 0\ntmpfs /run tmpfs rw 0 0\n/dev/vda /var/lib/docker ext4 rw 0 0\nnas:/export /mnt/my\\040data nfs4 rw 0 0\n',
    );
    expect(m).toEqual([
      { device: '/dev/vda', mount: '/', fsType: 'ext4' },
      { device: 'nas:/export', mount: '/mnt/my data', fsType: 'nfs4' },
    ]);
  });
  it('rates: null on the first reading and on a counter reset', () => {
    expect(ratePerSec(undefined, 10, 1)).toBeNull();
    expect(ratePerSec(100, 50, 1)).toBeNull();
    expect(ratePerSec(100, 300, 2)).toBe(100);
  });
});

describe('host collector on this machine', () => {
  it('every field from the real /proc, rates from the second reading, filesystems refreshed rarely', async () => {
    let now = Date.now();
    const c = createHostCollector({ now: () => now, fsRefreshMs: 60_000 });
    await c.start?.();
    await new Promise((r) => setTimeout(r, 150)); // let the real CPU counters move
    now += 1000;
    const { host } = await c.collect();
    const h = HostMetricsSchema.parse(host);
    expect(h.memoryTotalBytes).toBeGreaterThan(0);
    expect(h.memoryUsedBytes).toBeGreaterThan(0);
    expect(h.cpuPercent).not.toBeNull();
    expect(h.cpuPerCorePercent?.length).toBeGreaterThan(0);
    expect(h.uptimeSeconds).toBeGreaterThan(0);
    expect(h.swapTotalBytes).not.toBeUndefined();
    expect(Array.isArray(h.netInterfaces)).toBe(true);
    expect(h.diskReadBytesPerSec).not.toBeUndefined();
    const root = h.filesystems?.find((f) => f.mount === '/');
    expect(root?.sizeBytes).toBeGreaterThan(0);
    expect(root?.usedBytes).toBeGreaterThan(0);
  });
});

describe('host metrics through systeminformation (nodes without /proc)', () => {
  it('maps a Windows reading: loopback and vEthernet left out, no load average, schema-valid', () => {
    const host = siToHostMetrics(
      {
        load: { currentLoad: 12.5, cpus: [{ load: 10 }, { load: 15 }] as never },
        mem: { total: 34_359_738_368, available: 17_179_869_184, swaptotal: 2_147_483_648, swapused: 0 },
        net: [
          { iface: 'Ethernet', rx_sec: 1000, tx_sec: 500 },
          { iface: 'Loopback Pseudo-Interface 1', rx_sec: 99, tx_sec: 99 },
          { iface: 'vEthernet (WSL)', rx_sec: 77, tx_sec: 77 },
          { iface: 'Wi-Fi', rx_sec: null as never, tx_sec: -1 },
        ],
        disk: null, // fsStats: not on Windows
        fs: [{ mount: 'C:', type: 'NTFS', size: 1e12, used: 4e11, available: 6e11 }],
      },
      'win32',
    );
    expect(HostMetricsSchema.parse(host)).toEqual(host);
    expect(host).toMatchObject({
      cpuPercent: 12.5,
      cpuPerCorePercent: [10, 15],
      memoryUsedBytes: 17_179_869_184,
      memoryTotalBytes: 34_359_738_368,
      swapUsedBytes: 0,
      load1: null,
      load15: null,
      netRxBytesPerSec: 1000,
      netTxBytesPerSec: 500,
      diskReadBytesPerSec: null,
      filesystems: [{ mount: 'C:', fsType: 'NTFS', sizeBytes: 1e12, usedBytes: 4e11, availableBytes: 6e11 }],
    });
    expect(host.netInterfaces?.map((n) => n.name)).toEqual(['Ethernet', 'Wi-Fi']);
    expect(host.netInterfaces?.[1]).toEqual({ name: 'Wi-Fi', rxBytesPerSec: null, txBytesPerSec: null });
  });

  it('the real systeminformation on this machine agrees with /proc', async () => {
    const si = createHostCollector({ source: 'systeminformation' });
    await si.start?.();
    const host = (await si.collect()).host;
    if (!host) throw new Error('no host metrics from systeminformation');
    expect(HostMetricsSchema.parse(host)).toEqual(host);
    expect(host.memoryTotalBytes).toBe(os.totalmem());
    expect(host.cpuPerCorePercent).toHaveLength(os.cpus().length);
    expect(host.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(host.filesystems?.length).toBeGreaterThan(0);
    const proc = createHostCollector({ source: 'procfs' });
    await proc.start?.();
    const p = (await proc.collect()).host;
    expect(p?.memoryTotalBytes).toBe(host.memoryTotalBytes);
    expect(p?.swapTotalBytes).toBe(host.swapTotalBytes);
  }, 30_000);

  it('a hung systeminformation call delays no sample, and hung refreshes are bounded', async () => {
    let calls = 0;
    const hang = () => {
      calls++;
      return new Promise<never>(() => {});
    };
    let t = 0;
    const fake = { currentLoad: hang, mem: hang, networkStats: hang, fsStats: hang, fsSize: hang };
    const c = createSiHostCollector({ load: async () => fake as never, refreshTimeoutMs: 50, now: () => t });
    const started = Date.now();
    await c.start?.();
    expect(Date.now() - started).toBeLessThan(2_000);
    for (let i = 0; i < 20; i++) {
      t += 1000;
      const began = Date.now();
      expect(await c.collect()).toEqual({ host: null });
      expect(Date.now() - began).toBeLessThan(100);
    }
    // at most 3 refreshes in flight, each one call per function (fsSize only when due)
    expect(calls).toBeLessThanOrEqual(3 * 5);
  });

  it('Linux never loads systeminformation in the sample path: only the non-Linux collector and --check import it, lazily', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    );
    const users: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      if (/^import\s+(?!type\b)[^;]*?from\s+'systeminformation'/m.test(text)) users.push(`${f} (static)`);
      if (/import\('systeminformation'\)/.test(text)) users.push(f);
    }
    expect(users.sort()).toEqual(['check.ts', 'collectors/host/systeminformation.ts']);
  });
});
