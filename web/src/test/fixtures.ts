import type { FleetSnapshot, GpuView, NodeView } from '@gpupulse/protocol';

export function gpu(index: number, overrides: Partial<GpuView> = {}): GpuView {
  return {
    index,
    uuid: `GPU-${index}`,
    name: 'NVIDIA H100 80GB HBM3',
    state: 'ok',
    utilizationGpuPercent: 50,
    utilizationMemoryPercent: 20,
    memoryUsedMiB: 1024,
    memoryTotalMiB: 81559,
    temperatureCelsius: 60,
    powerDrawWatts: 300,
    powerLimitWatts: 700,
    fanSpeedPercent: null,
    pstate: 'P0',
    clocksSmMHz: 1980,
    clocksMemoryMHz: 2619,
    project: null,
    ...overrides,
  };
}

export function node(name: string, overrides: Partial<NodeView> = {}): NodeView {
  return {
    node: name,
    status: 'online',
    connected: true,
    lastSeen: 1000,
    lastSampleTs: 1000,
    gpuCollector: 'ok',
    gpuError: null,
    host: {
      cpuPercent: 12,
      memoryUsedBytes: 1,
      memoryTotalBytes: 2,
      load1: 0,
      load5: 0,
      load15: 0,
      netRxBytesPerSec: 0,
      netTxBytesPerSec: 0,
      uptimeSeconds: 10,
    },
    gpus: [gpu(0), gpu(1)],
    ...overrides,
  };
}

export function snapshot(nodes: NodeView[], serverTime = 1000): FleetSnapshot {
  return { serverTime, intervalMs: 1000, storage: { kind: 'memory', warning: 'in memory', ok: true }, nodes };
}
