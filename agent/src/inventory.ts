// Static inventory of this node, sent once per connection: OS, kernel, CPU, memory, nvidia-smi
// versions and the GPUs of the latest round. Read from /etc/os-release and node:os (cheap, no child
// processes): systeminformation's osInfo()/cpu() run several commands per call and would cost the
// daemon ~10 MB of resident memory for data that fits in a few lines.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Inventory } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';
import type { NvidiaSmi } from './collectors/nvidia-smi/collector.ts';
import { AGENT_VERSION } from './version.ts';

const clip = (s: string | null | undefined, max: number = LIMITS.maxTextLength) =>
  s ? s.slice(0, max) : null;

/** `/etc/os-release` → `PRETTY_NAME` (or NAME VERSION_ID); null when absent. */
export function parseOsRelease(text: string): string | null {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1]) vars.set(m[1], (m[2] ?? '').replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'));
  }
  return (
    vars.get('PRETTY_NAME') ?? ([vars.get('NAME'), vars.get('VERSION_ID')].filter(Boolean).join(' ') || null)
  );
}

/** Physical cores from /proc/cpuinfo (distinct physical id + core id); null when not listed. */
export function parseCpuinfoCores(text: string): number | null {
  const cores = new Set<string>();
  let phys = '0';
  for (const line of text.split('\n')) {
    const [k, v] = line.split(':').map((s) => s.trim());
    if (k === 'physical id') phys = v ?? '0';
    if (k === 'core id') cores.add(`${phys}:${v}`);
  }
  return cores.size > 0 ? cores.size : null;
}

export async function collectInventory(hostname: string, smi: NvidiaSmi | null): Promise<Inventory> {
  const [osRelease, cpuinfo] = await Promise.all([
    readFile('/etc/os-release', 'utf8').catch(() => ''),
    readFile('/proc/cpuinfo', 'utf8').catch(() => ''),
  ]);
  const cpus = os.cpus();
  return {
    agentVersion: AGENT_VERSION,
    hostname,
    os: clip(parseOsRelease(osRelease) ?? `${os.type()} ${os.release()}`),
    kernel: clip(os.release()),
    cpuModel: clip(cpus[0]?.model?.trim()),
    cpuCores: parseCpuinfoCores(cpuinfo) ?? cpus.length,
    memoryTotalBytes: os.totalmem(),
    nvidiaSmiVersion: clip(smi?.version?.nvidiaSmiVersion),
    driverVersion: clip(smi?.version?.driverVersion ?? smi?.lastRound[0]?.driverVersion, 64),
    cudaVersion: clip(smi?.version?.cudaVersion, 64),
    gpus: (smi?.lastRound ?? []).slice(0, LIMITS.maxGpusPerSample).map((g) => ({
      index: g.index,
      uuid: g.uuid,
      name: g.name,
      memoryTotalMiB: g.memoryTotalMiB,
    })),
  };
}
