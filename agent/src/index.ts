// Public entry of @gpupulse/agent (used by cross-package tests).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the fake nvidia-smi that replays real captures (see testdata/fake-nvidia-smi/). */
export const FAKE_NVIDIA_SMI_PATH = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../testdata/fake-nvidia-smi/fake-nvidia-smi.mjs',
);
/** Folder of the capture files the fake replays (FAKE_NVIDIA_SMI_CAPTURE takes a name from here). */
export const NVIDIA_SMI_CAPTURES_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  'collectors/nvidia-smi/testdata',
);
/** Absolute path of the agent CLI (`node <path> --once …`). */
export const AGENT_BIN_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/gpupulse-agent.mjs');
/** Absolute path of the simulator CLI. */
export const SIM_BIN_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/gpupulse-sim.mjs');

export { type Agent, type AgentOptions, createAgent } from './agent.ts';
export { backoffDelay } from './backoff.ts';
export { createHostCollector, sumNetworkRates } from './collectors/host/index.ts';
export { type CollectorSet, type CollectorSetOptions, createCollectors } from './collectors/index.ts';
export {
  createNvidiaSmiGpuCollector,
  createNvidiaSmiProcessCollector,
  NvidiaSmi,
  type NvidiaSmiOptions,
} from './collectors/nvidia-smi/collector.ts';
export {
  COMPUTE_APP_FIELDS,
  decodeClockEventReasons,
  GPU_FIELDS,
  isNullToken,
  parseBool,
  parseComputeApps,
  parseGpuCsv,
  parseGpuRow,
  parseHelpQuery,
  parseNumber,
  parseText,
  parseVersion,
  planGpuQuery,
  RoundAssembler,
  splitRow,
} from './collectors/nvidia-smi/parse.ts';
export { ProcReader, parseCgroup, parseEnviron } from './collectors/nvidia-smi/procfs.ts';
export type { Collector, SampleParts } from './collectors/types.ts';
export { type AgentConfig, AgentConfigSchema, type AgentFlags, resolveConfig } from './config.ts';
export { collectInventory } from './inventory.ts';
export { createLogger, createSilentLogger, type Logger } from './logger.ts';
export { DEFAULT_QUEUE_CAPACITY, MemoryQueue, type SampleQueue } from './queue.ts';
export { Runner, type RunnerOptions } from './runner.ts';
export {
  type SimAgentStats,
  type SimAgents,
  type SimAgentsOptions,
  startSimAgents,
} from './sim/agents.ts';
export { createSimCollectors } from './sim/collectors.ts';
export { createSimFleet, type SimFleet, type SimFleetOptions } from './sim/fleet.ts';
export { SocketTransport, type TransportOptions } from './transport.ts';
export { AGENT_VERSION } from './version.ts';
