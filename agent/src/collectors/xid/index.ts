// XID collector: follows the kernel log (default /dev/kmsg) without blocking: the file is opened
// non-blocking and drained once per tick, so no thread or timer sits on it. Records from before
// the agent started are skipped. Unreadable log (permissions, no such device): one info line,
// then the collector reports nothing.
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import type { GpuEvent } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';
import type { Logger } from '../../logger.ts';
import type { Collector } from '../types.ts';
import { normalizePciBusId, parseXidLine } from './parse.ts';

export interface XidCollectorOptions {
  /** Kernel log to follow (default /dev/kmsg); a FIFO or a growing file works too. */
  path?: string;
  logger: Logger;
  /** PCI bus id (normalized) → GPU uuid, from the latest nvidia-smi round. */
  gpuByPci: () => ReadonlyMap<string, string>;
  now?: () => number;
  /** Monotonic µs now (skip older /dev/kmsg records); default from /proc/uptime. */
  uptimeUs?: () => number | null;
}

const MAX_EVENTS_PER_SAMPLE = 256;

function procUptimeUs(): number | null {
  try {
    const v = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return Number.isFinite(v) ? Math.floor(v * 1e6) : null;
  } catch {
    return null;
  }
}

export function createXidCollector(options: XidCollectorOptions): Collector & { readonly events: number } {
  const path = options.path ?? '/dev/kmsg';
  const log = options.logger;
  const now = options.now ?? Date.now;
  let fd: number | null = null;
  let startUs: number | null = null;
  let bootMs: number | null = null;
  let carry = '';
  let events = 0;
  const buf = Buffer.allocUnsafe(16 * 1024);
  const pending: GpuEvent[] = [];

  const drain = (): void => {
    if (fd === null) return;
    for (let i = 0; i < 10_000; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return;
        if (code === 'EPIPE') continue; // /dev/kmsg: records were overwritten; the next read goes on
        log.warn({ path, err: code ?? (err as Error).message }, 'kernel log read failed; XID events off');
        closeSync(fd);
        fd = null;
        return;
      }
      if (n === 0) return;
      const chunk = carry + buf.toString('utf8', 0, n);
      const lines = chunk.split('\n');
      carry = lines.pop() ?? '';
      if (carry.length > 64 * 1024) carry = '';
      for (const line of lines) take(line);
    }
  };

  const take = (line: string): void => {
    if (!line.includes('Xid')) return;
    const rec = parseXidLine(line);
    if (!rec) return;
    if (rec.monotonicUs !== null && startUs !== null && rec.monotonicUs < startUs) return;
    const ts =
      rec.monotonicUs !== null && bootMs !== null ? Math.round(bootMs + rec.monotonicUs / 1000) : now();
    const pci = normalizePciBusId(rec.pci);
    const uuid = pci ? (options.gpuByPci().get(pci) ?? null) : null;
    events++;
    log.warn({ xid: rec.code, pciBusId: rec.pci, gpuUuid: uuid }, `NVIDIA XID ${rec.code}: ${rec.message}`);
    if (pending.length >= MAX_EVENTS_PER_SAMPLE) pending.shift();
    pending.push({
      kind: 'xid',
      gpuUuid: uuid,
      pciBusId: rec.pci,
      code: rec.code,
      message: `Xid ${rec.code}: ${rec.message}`.slice(0, LIMITS.maxTextLength),
      ts: Math.max(0, ts),
    });
  };

  return {
    name: 'xid',
    get events() {
      return events;
    },
    async start() {
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch (err) {
        log.info(
          { path, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
          'kernel log not readable; XID events are not reported',
        );
        return;
      }
      const up = (options.uptimeUs ?? procUptimeUs)();
      startUs = up;
      bootMs = up === null ? null : now() - up / 1000;
      drain();
    },
    async collect() {
      drain();
      if (pending.length === 0) return {};
      return { gpuEvents: pending.splice(0) };
    },
    fallback: () => ({}),
    async stop() {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
