import os from 'node:os';
import type { Inventory } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';
import * as si from 'systeminformation';
import type { NvidiaSmi } from './collectors/nvidia-smi/collector.ts';
import { AGENT_VERSION } from './version.ts';

const clip = (s: string | null | undefined, max: number = LIMITS.maxTextLength) =>
  s ? s.slice(0, max) : null;

/** Static inventory of this node (OS, CPU, memory, nvidia-smi versions, GPUs of the latest round). */
export async function collectInventory(hostname: string, smi: NvidiaSmi | null): Promise<Inventory> {
  const [osInfo, cpu] = await Promise.all([si.osInfo().catch(() => null), si.cpu().catch(() => null)]);
  const cpuModel = cpu ? [cpu.manufacturer, cpu.brand].filter(Boolean).join(' ') : null;
  return {
    agentVersion: AGENT_VERSION,
    hostname,
    os: clip(osInfo ? `${osInfo.distro} ${osInfo.release}`.trim() : `${os.type()} ${os.release()}`),
    kernel: clip(osInfo?.kernel ?? os.release()),
    cpuModel: clip(cpuModel || os.cpus()[0]?.model),
    cpuCores: cpu?.cores ?? os.cpus().length,
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
