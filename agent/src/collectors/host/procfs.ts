// Pure parsers for the host's /proc files (no I/O here) and the rate arithmetic between readings.

export interface CpuTimes {
  busy: number;
  total: number;
}

/** `/proc/stat` → aggregate CPU times and per-core times (jiffies). */
export function parseProcStat(text: string): { total: CpuTimes | null; cores: CpuTimes[] } {
  let total: CpuTimes | null = null;
  const cores: CpuTimes[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const parts = line.trim().split(/\s+/);
    const label = parts[0] ?? '';
    const v = parts.slice(1, 11).map(Number);
    if (v.length < 4 || v.some((n) => !Number.isFinite(n))) continue;
    // user nice system idle iowait irq softirq steal (guest, guest_nice are inside user/nice)
    const all = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const t = { busy: all - idle, total: all };
    if (label === 'cpu') total = t;
    else if (/^cpu\d+$/.test(label)) cores[Number(label.slice(3))] = t;
  }
  return { total, cores: cores.filter(Boolean) };
}

/** CPU % between two readings; null when no time passed. */
export function cpuPercent(
  before: CpuTimes | null | undefined,
  after: CpuTimes | null | undefined,
): number | null {
  if (!before || !after) return null;
  const dt = after.total - before.total;
  if (dt <= 0) return null;
  const p = ((after.busy - before.busy) / dt) * 100;
  return Math.round(Math.max(0, Math.min(100, p)) * 100) / 100;
}

/** `/proc/meminfo` → bytes (kB values × 1024). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)(?: kB)?$/.exec(line.trim());
    if (m?.[1]) out[m[1]] = Number(m[2]) * (line.includes('kB') ? 1024 : 1);
  }
  return out;
}

/** Interfaces left out of per-interface figures and totals: loopback and virtual ones. */
export const VIRTUAL_IFACE =
  /^(lo|veth|cali|docker\d|br-|virbr|cni|flannel|vxlan|tunl|kube-|cilium|lxc|ifb|dummy|genev|tap|weave|vnet|nodelocaldns)/;

/** `/proc/net/dev` → bytes received / sent per interface. */
export function parseNetDev(text: string): Map<string, { rx: number; tx: number }> {
  const out = new Map<string, { rx: number; tx: number }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const v = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || v.length < 9) continue;
    const rx = v[0];
    const tx = v[8];
    if (rx === undefined || tx === undefined || !Number.isFinite(rx) || !Number.isFinite(tx)) continue;
    out.set(name, { rx, tx });
  }
  return out;
}

/** Whole disks worth counting (partitions, loop, ram, device-mapper and md left out: no double counting). */
export const COUNTED_DISK = /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/;

/** `/proc/diskstats` → bytes read / written per device (sectors × 512). */
export function parseDiskstats(text: string): Map<string, { read: number; written: number }> {
  const out = new Map<string, { read: number; written: number }>();
  for (const line of text.split('\n')) {
    const p = line.trim().split(/\s+/);
    if (p.length < 10) continue;
    const name = p[2] ?? '';
    const read = Number(p[5]);
    const written = Number(p[9]);
    if (!Number.isFinite(read) || !Number.isFinite(written)) continue;
    out.set(name, { read: read * 512, written: written * 512 });
  }
  return out;
}

/** Filesystem types whose usage is reported (real storage, local or shared). */
export const REPORTED_FS = new Set([
  'ext2',
  'ext3',
  'ext4',
  'xfs',
  'btrfs',
  'zfs',
  'f2fs',
  'vfat',
  'exfat',
  'nfs',
  'nfs4',
  'cifs',
  'smb3',
  'lustre',
  'gpfs',
  'beegfs',
  'fuse.ceph',
  'ceph',
  'fuse.glusterfs',
  'wekafs',
]);

/** `/proc/self/mounts` → mount points of reported filesystem types (one per device; octal escapes decoded). */
export function parseMounts(text: string): Array<{ device: string; mount: string; fsType: string }> {
  const out: Array<{ device: string; mount: string; fsType: string }> = [];
  const devices = new Set<string>();
  const decodeOctal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  for (const line of text.split('\n')) {
    const [device, mount, fsType] = line.split(' ');
    if (!device || !mount || !fsType || !REPORTED_FS.has(fsType)) continue;
    if (devices.has(device)) continue;
    devices.add(device);
    out.push({ device, mount: decodeOctal(mount), fsType });
  }
  return out;
}

/** Per-second rate between two counter readings; null on the first reading, a reset or no time passed. */
export function ratePerSec(before: number | undefined, after: number, seconds: number): number | null {
  if (before === undefined || seconds <= 0 || after < before) return null;
  return Math.round(((after - before) / seconds) * 100) / 100;
}
