// XID lines as drivers print them (dmesg, journal, /dev/kmsg records) and the collector following a
// real FIFO the way it follows /dev/kmsg.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuEventSchema } from '@gpupulse/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../logger.ts';
import { createXidCollector } from './index.ts';
import { normalizePciBusId, parseXidLine } from './parse.ts';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe('parseXidLine', () => {
  it.each([
    [
      '[ 1234.567890] NVRM: Xid (PCI:0000:af:00): 13, Graphics SM Warp Exception on (GPC 1, TPC 0, SM 0): Out Of Range Address',
      { pci: '0000:af:00', code: 13, monotonicUs: null },
    ],
    ['NVRM: Xid (PCI:0000:3b:00): 79, pid=0, GPU has fallen off the bus.', { pci: '0000:3b:00', code: 79 }],
    ['NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.', { pci: '0000:3b:00', code: 79 }],
    [
      'NVRM: Xid (PCI:0000:00:1e): 31, pid=12345, name=python3, Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f12_34560000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ',
      { pci: '0000:00:1e', code: 31 },
    ],
    [
      'NVRM: Xid (PCI:0000:9b:00): 119, pid=3071, name=nvidia-smi, Timeout after 6s of waiting for RPC response from GPU1 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20802a02 0x8).',
      { pci: '0000:9b:00', code: 119 },
    ],
    [
      'Mar 02 10:11:12 gpu-node-07 kernel: NVRM: Xid (PCI:0000:3B:00): 94, pid=2871, name=python, Contained: SM (0x1). RST: No, D-RST: No',
      { pci: '0000:3b:00', code: 94 },
    ],
    [
      '4,1823,123456789012,-;NVRM: Xid (PCI:0000:18:00): 48, pid=9, name=train, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.',
      { pci: '0000:18:00', code: 48, monotonicUs: 123456789012 },
    ],
  ])('%s', (line, expected) => {
    expect(parseXidLine(line)).toMatchObject(expected);
  });

  it('other NVRM lines are not XIDs', () => {
    expect(parseXidLine('NVRM: GPU at PCI:0000:3b:00: GPU-00000000-0000-0000-0000-000000000000')).toBeNull();
    expect(parseXidLine('6,900,5000,-;NVRM: loading NVIDIA UNIX x86_64 Kernel Module  590.48.01')).toBeNull();
  });

  it('PCI ids of the kernel and of nvidia-smi meet', () => {
    expect(normalizePciBusId('00000000:3B:00.0')).toBe('0000:3b:00');
    expect(normalizePciBusId('0000:3b:00')).toBe('0000:3b:00');
    expect(normalizePciBusId('[N/A]')).toBeNull();
  });
});

describe('XID collector', () => {
  it('follows a kernel-log FIFO without blocking, maps the PCI id to the GPU uuid, skips old records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-xid-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const fifo = join(dir, 'kmsg');
    execFileSync('mkfifo', [fifo]);
    const c = createXidCollector({
      path: fifo,
      logger: createSilentLogger(),
      gpuByPci: () => new Map([['0000:3b:00', 'GPU-abc']]),
      uptimeUs: () => 1_000_000_000,
    });
    await c.start?.();
    const w = openSync(fifo, 'w');
    cleanup.push(() => c.stop?.());
    expect(await c.collect()).toEqual({});
    writeSync(
      w,
      '4,10,999000000,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1, old one before the agent started.\n',
    );
    writeSync(
      w,
      '4,11,1000500000,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n',
    );
    writeSync(w, '6,12,1000600000,-;usb 1-1: new device\n');
    writeSync(w, '4,13,1000700000,-;NVRM: Xid (PCI:0000:d8:00): 13, Graphics Exception');
    const first = await c.collect();
    expect(first.gpuEvents).toHaveLength(1);
    const ev = GpuEventSchema.parse(first.gpuEvents?.[0]);
    expect(ev).toMatchObject({ kind: 'xid', gpuUuid: 'GPU-abc', code: 79, pciBusId: '0000:3b:00' });
    expect(ev.message).toContain('GPU has fallen off the bus');
    writeSync(w, '\n'); // the partial record completes
    const second = await c.collect();
    expect(second.gpuEvents?.[0]).toMatchObject({ code: 13, gpuUuid: null, pciBusId: '0000:d8:00' });
    expect(await c.collect()).toEqual({});
  });

  it('an unreadable kernel log: nothing reported, never fails', async () => {
    const c = createXidCollector({
      path: '/nonexistent/kmsg',
      logger: createSilentLogger(),
      gpuByPci: () => new Map(),
    });
    await c.start?.();
    expect(await c.collect()).toEqual({});
  });
});
