/**
 * THE mapping from protocol keys to InfluxDB measurements, tags and fields. Nothing else in the
 * server knows InfluxDB names. GPU points follow Telegraf's `nvidia_smi` input (measurement, tag
 * keys, field names, units and types) for every metric both have; everything else is documented
 * in server/README.md. Field types are fixed here forever: InfluxDB refuses a type change.
 */

import {
  type Alert,
  GPU_HISTORY_METRICS,
  GPU_METRICS,
  type GpuHistoryMetricKey,
  type GpuMetricDef,
  type GpuMetrics,
  type GpuProcess,
  HISTORY_METRICS,
  type HistoryMetric,
  type HostMetrics,
  type MetricType,
  type Sample,
} from '@gpupulse/protocol';
import type { MetricPoint } from './metric-store.ts';

export const MEASUREMENT_GPU = 'nvidia_smi';
export const MEASUREMENT_HOST = 'gpupulse_host';
export const MEASUREMENT_PROCESS = 'gpupulse_process';
export const MEASUREMENT_ALERT = 'gpupulse_alert';

type NumericKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends number ? K : never }[keyof T];
type StringKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends string ? K : never }[keyof T];
type BoolKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends boolean ? K : never }[keyof T];

const REGISTRY: readonly GpuMetricDef[] = GPU_METRICS;

/** `[protocol key, nvidia_smi field]` of the registry's metrics of one type that are stored as fields. */
function fieldsOf<K extends keyof GpuMetrics>(type: MetricType): ReadonlyArray<readonly [K, string]> {
  const out: Array<readonly [K, string]> = [];
  for (const m of REGISTRY)
    if (m.type === type && 'field' in m.storage) out.push([m.key as K, m.storage.field]);
  return out;
}

/**
 * GPU integer fields (MiB, %, °C, MHz, counters), from the protocol's metric registry. The protocol
 * schema refuses fractions for every one of them (and host/process integers), so a stored value
 * always equals the live one; line protocol only rounds defensively (test/schema.test.ts checks
 * the two agree).
 */
export const GPU_INT_FIELDS = fieldsOf<NumericKey<GpuMetrics>>('int');
/** GPU float fields (W). */
export const GPU_FLOAT_FIELDS = fieldsOf<NumericKey<GpuMetrics>>('float');
/** GPU string fields. */
export const GPU_STRING_FIELDS = fieldsOf<StringKey<GpuMetrics>>('string');
/** GPU booleans, stored as integers 0/1 (our additions). */
export const GPU_BOOL_INT_FIELDS = fieldsOf<BoolKey<GpuMetrics>>('bool');
/** GPU metrics stored as tags of the GPU's series (`pstate`, `compute_mode`). */
export const GPU_TAG_METRICS: ReadonlyArray<readonly [StringKey<GpuMetrics>, string]> = REGISTRY.flatMap(
  (m) => ('tag' in m.storage ? [[m.key as StringKey<GpuMetrics>, m.storage.tag] as const] : []),
);

/** Host float fields (%, load, bytes/s, s). */
export const HOST_FLOAT_FIELDS: ReadonlyArray<readonly [NumericKey<HostMetrics>, string]> = [
  ['cpuPercent', 'cpu_percent'],
  ['load1', 'load1'],
  ['load5', 'load5'],
  ['load15', 'load15'],
  ['netRxBytesPerSec', 'net_rx_bytes_per_sec'],
  ['netTxBytesPerSec', 'net_tx_bytes_per_sec'],
  ['uptimeSeconds', 'uptime_seconds'],
];

/** Host integer fields (bytes). */
export const HOST_INT_FIELDS: ReadonlyArray<readonly [NumericKey<HostMetrics>, string]> = [
  ['memoryUsedBytes', 'memory_used'],
  ['memoryTotalBytes', 'memory_total'],
  ['swapUsedBytes', 'swap_used'],
  ['swapTotalBytes', 'swap_total'],
];

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function setTag(tags: Record<string, string>, key: string, value: string | null | undefined): void {
  if (value !== null && value !== undefined && value !== '') tags[key] = value;
}

/**
 * Fields that describe the board more than its load (limits, versions, identity, modes, lifetime
 * counters: `slow` in the registry). They are written when they change and at least once a minute
 * (`SlowFieldGate`), not every second: about half of a GPU point's fields, and of InfluxDB's write cost.
 */
export const GPU_SLOW_FIELDS: ReadonlySet<string> = new Set(
  REGISTRY.flatMap((m) => (m.slow && 'field' in m.storage ? [m.storage.field] : [])),
);

const SLOW_KEYS: readonly (keyof GpuMetrics)[] = REGISTRY.filter((m) => m.slow).map((m) => m.key);

/** The stored fields of a GPU point in one list (one loop per point, no per-type passes). */
const STORED_FIELDS: ReadonlyArray<{
  key: keyof GpuMetrics;
  field: string;
  type: MetricType;
  slow: boolean;
}> = REGISTRY.flatMap((m) =>
  'field' in m.storage ? [{ key: m.key, field: m.storage.field, type: m.type, slow: m.slow }] : [],
);

/** Decides per GPU whether a point carries the slow fields: on change, else once per `everyMs`. */
export class SlowFieldGate {
  /** node → GPU uuid → when the slow fields were last written and their values then. */
  private readonly last = new Map<string, Map<string, { ts: number; values: unknown[] }>>();
  private gpus = 0;
  constructor(
    private readonly everyMs = 60_000,
    private readonly maxGpus = 200_000,
  ) {}

  /** Compares the slow values in place (no key or signature string per GPU and sample). */
  include(node: string, gpu: GpuMetrics, ts: number): boolean {
    let byUuid = this.last.get(node);
    const prev = byUuid?.get(gpu.uuid);
    if (prev) {
      if (ts < prev.ts) return true; // a replayed, older sample: write it whole
      let same = ts - prev.ts < this.everyMs;
      for (let i = 0; same && i < SLOW_KEYS.length; i++)
        if (prev.values[i] !== (gpu[SLOW_KEYS[i]!] ?? null)) same = false;
      if (same) return false;
      prev.ts = ts;
      for (let i = 0; i < SLOW_KEYS.length; i++) prev.values[i] = gpu[SLOW_KEYS[i]!] ?? null;
      return true;
    }
    if (this.gpus >= this.maxGpus) {
      this.last.clear();
      this.gpus = 0;
      byUuid = undefined;
    }
    if (!byUuid) {
      byUuid = new Map();
      this.last.set(node, byUuid);
    }
    byUuid.set(gpu.uuid, { ts, values: SLOW_KEYS.map((k) => gpu[k] ?? null) });
    this.gpus++;
    return true;
  }
}

/**
 * The `nvidia_smi` point of one GPU. `project`: the attributed project, null when the GPU has no
 * process. `slow`: include the slow-changing fields (`GPU_SLOW_FIELDS`).
 */
export function gpuPoint(
  node: string,
  ts: number,
  gpu: GpuMetrics,
  project: string | null,
  slow = true,
): MetricPoint {
  const tags: Record<string, string> = {
    host: node,
    index: String(gpu.index),
    uuid: gpu.uuid,
    name: gpu.name,
  };
  for (const [key, tag] of GPU_TAG_METRICS) setTag(tags, tag, gpu[key]);
  setTag(tags, 'project', project);
  const ints: Record<string, number> = {};
  const floats: Record<string, number> = {};
  const strings: Record<string, string> = {};
  for (const f of STORED_FIELDS) {
    if (!slow && f.slow) continue;
    const v = gpu[f.key];
    if (v === null || v === undefined) continue;
    if (f.type === 'int') {
      if (isNum(v)) ints[f.field] = Math.round(v);
    } else if (f.type === 'float') {
      if (isNum(v)) floats[f.field] = v;
    } else if (f.type === 'bool') {
      if (typeof v === 'boolean') ints[f.field] = v ? 1 : 0;
    } else if (typeof v === 'string' && v !== '') strings[f.field] = v;
  }
  return { measurement: MEASUREMENT_GPU, tags, ints, floats, strings, ts };
}

/** The `gpupulse_host` point of one node, or null when it carries no value at all. */
export function hostPoint(node: string, ts: number, host: HostMetrics): MetricPoint | null {
  const ints: Record<string, number> = {};
  const floats: Record<string, number> = {};
  for (const [key, field] of HOST_FLOAT_FIELDS) {
    const v = host[key];
    if (isNum(v)) floats[field] = v;
  }
  for (const [key, field] of HOST_INT_FIELDS) {
    const v = host[key];
    if (isNum(v)) ints[field] = Math.round(v);
  }
  if (Object.keys(ints).length + Object.keys(floats).length === 0) return null;
  return { measurement: MEASUREMENT_HOST, tags: { host: node }, ints, floats, ts };
}

/** The user a process is stored under: its user name, else Slurm's user, else `uid:<n>`; null when unknown. */
export function processUser(p: GpuProcess): string | null {
  if (p.user) return p.user;
  if (p.slurmUser) return p.slurmUser;
  if (p.uid !== null && p.uid !== undefined) return `uid:${p.uid}`;
  return null;
}

/**
 * `gpupulse_process` points. Several processes of one user and project on one GPU would share a
 * series and a timestamp (and overwrite each other), so each gets a small `slot` tag: its rank by
 * pid within that group (bounded by the processes per GPU, unlike pids).
 */
export function processPoints(
  node: string,
  ts: number,
  processes: readonly GpuProcess[],
  projectOf: (p: GpuProcess) => string,
): MetricPoint[] {
  // Sorted by pid (slots follow pid order); most lists arrive sorted: no copy then.
  let ordered = true;
  for (let i = 1; ordered && i < processes.length; i++) ordered = processes[i - 1]!.pid <= processes[i]!.pid;
  const sorted = ordered ? processes : [...processes].sort((a, b) => a.pid - b.pid);
  const slots = new Map<string, number>();
  const out: MetricPoint[] = [];
  for (const p of sorted) {
    const user = processUser(p);
    const project = projectOf(p);
    const group = JSON.stringify([p.gpuUuid, user, project]);
    const slot = slots.get(group) ?? 0;
    slots.set(group, slot + 1);
    const tags: Record<string, string> = { host: node, uuid: p.gpuUuid };
    setTag(tags, 'user', user);
    setTag(tags, 'project', project);
    tags.slot = String(slot);
    const ints: Record<string, number> = { pid: p.pid };
    if (isNum(p.usedMemoryMiB)) ints.used_memory = Math.round(p.usedMemoryMiB);
    const strings: Record<string, string> = {};
    if (p.name !== '') strings.process_name = p.name;
    if (p.slurmJobId) strings.slurm_job_id = p.slurmJobId;
    if (p.k8sNamespace) strings.k8s_namespace = p.k8sNamespace;
    out.push({ measurement: MEASUREMENT_PROCESS, tags, ints, strings, ts });
  }
  return out;
}

/** Attribution seam: the project of a GPU given its processes (null when it has none). */
export type Attribute = (
  node: string,
  gpu: { uuid: string; index: number },
  processes: readonly GpuProcess[],
) => string | null;

/** Every point of one sample. `processes`: the process list in effect at this sample (deltas applied). */
export function samplePoints(
  node: string,
  sample: Sample,
  processes: readonly GpuProcess[],
  attribute: Attribute,
  slowFields?: SlowFieldGate,
): MetricPoint[] {
  const points: MetricPoint[] = [];
  const byGpu = new Map<string, GpuProcess[]>();
  for (const p of processes) {
    const list = byGpu.get(p.gpuUuid);
    if (list) list.push(p);
    else byGpu.set(p.gpuUuid, [p]);
  }
  const indexOf = new Map<string, number>();
  for (const gpu of sample.gpus) {
    indexOf.set(gpu.uuid, gpu.index);
    const slow = slowFields ? slowFields.include(node, gpu, sample.ts) : true;
    points.push(gpuPoint(node, sample.ts, gpu, attribute(node, gpu, byGpu.get(gpu.uuid) ?? []), slow));
  }
  if (sample.host) {
    const hp = hostPoint(node, sample.ts, sample.host);
    if (hp) points.push(hp);
  }
  // Process points are written when the sample says something about processes (a full list,
  // or a delta): then the whole list in effect is written, so every written instant is complete.
  const reportsProcesses = sample.processes !== undefined || (sample.processesGone?.length ?? 0) > 0;
  if (reportsProcesses && processes.length > 0) {
    points.push(
      ...processPoints(node, sample.ts, processes, (p) => {
        return attribute(node, { uuid: p.gpuUuid, index: indexOf.get(p.gpuUuid) ?? -1 }, [p]) ?? 'unassigned';
      }),
    );
  }
  return points;
}

/** Line protocol lives in ./line-protocol.ts (escaping and the replacements InfluxDB needs). */
export { type LineStats, newLineStats, storedName, storedString, toLineProtocol } from './line-protocol.ts';

/**
 * The `gpupulse_alert` point of one alert transition (firing or resolved), at the time of the
 * transition. Tags: rule, severity, host, uuid, project (the last two omitted when not a GPU /
 * no project). Fields: state, message, value (float, omitted when null), started_at (ms),
 * ended_at (ms, resolved only), gpu_index, threshold.
 */
export function alertPoint(alert: Alert): MetricPoint {
  const tags: Record<string, string> = { rule: alert.rule, severity: alert.severity, host: alert.node };
  setTag(tags, 'uuid', alert.gpuUuid);
  setTag(tags, 'project', alert.project);
  const ints: Record<string, number> = { started_at: alert.startedAt };
  if (alert.endedAt !== null) ints.ended_at = alert.endedAt;
  if (alert.gpuIndex !== null) ints.gpu_index = alert.gpuIndex;
  const floats: Record<string, number> = {};
  if (isNum(alert.value)) floats.value = alert.value;
  if (isNum(alert.threshold)) floats.threshold = alert.threshold;
  return {
    measurement: MEASUREMENT_ALERT,
    tags,
    ints,
    floats,
    strings: { state: alert.state, message: alert.message },
    ts: alert.state === 'resolved' && alert.endedAt !== null ? alert.endedAt : alert.startedAt,
  };
}

// ---- project usage, cluster usage and rollups (server-computed) ----

/** Live per-project usage, every 10 s (raw tier). */
export const MEASUREMENT_PROJECT_USAGE = 'gpupulse_project_usage';
/** Live cluster totals, every 10 s (raw tier). */
export const MEASUREMENT_CLUSTER_USAGE = 'gpupulse_cluster_usage';

export type RollupTier = '1m' | '1h';
export type RollupKind = 'gpu' | 'project' | 'user' | 'cluster';
/** Rollup measurements by kind and tier. */
export const ROLLUP_MEASUREMENTS: Record<RollupKind, Record<RollupTier, string>> = {
  gpu: { '1m': 'nvidia_smi_1m', '1h': 'nvidia_smi_1h' },
  project: { '1m': 'project_usage_1m', '1h': 'project_usage_1h' },
  user: { '1m': 'user_usage_1m', '1h': 'user_usage_1h' },
  cluster: { '1m': 'cluster_usage_1m', '1h': 'cluster_usage_1h' },
};

/**
 * GPU metrics rolled up per GPU (the registry's metrics with history): protocol key → raw
 * `nvidia_smi` field; rollups get `<field>_mean`, `<field>_max`.
 */
export const ROLLUP_GPU_METRICS: ReadonlyArray<readonly [GpuHistoryMetricKey, string]> =
  GPU_HISTORY_METRICS.map((m) => [m.key, m.field] as const);
export type RollupGpuMetric = GpuHistoryMetricKey;

export interface ProjectUsageValues {
  project: string;
  institution: string | null;
  gpusInUse: number;
  gpusIdleHeld: number;
  utilizationMean: number | null;
  memoryUsedMiB: number;
  powerDrawWatts: number;
}

export function projectUsagePoint(ts: number, v: ProjectUsageValues): MetricPoint {
  const tags: Record<string, string> = { project: v.project };
  setTag(tags, 'institution', v.institution);
  const floats: Record<string, number> = {
    gpus_in_use: v.gpusInUse,
    gpus_idle_held: v.gpusIdleHeld,
    memory_used: v.memoryUsedMiB,
    power_draw: v.powerDrawWatts,
  };
  if (v.utilizationMean !== null) floats.utilization_mean = v.utilizationMean;
  return { measurement: MEASUREMENT_PROJECT_USAGE, tags, floats, ts };
}

export interface ClusterUsageValues {
  gpusTotal: number;
  gpusInUse: number;
  gpusIdleHeld: number;
  gpusFree: number;
  gpusOffline: number;
  utilizationMean: number | null;
  temperatureMean: number | null;
  memoryUsedMiB: number;
  powerDrawWatts: number;
}

export function clusterUsagePoint(ts: number, v: ClusterUsageValues): MetricPoint {
  const ints = {
    gpus_total: v.gpusTotal,
    gpus_in_use: v.gpusInUse,
    gpus_idle_held: v.gpusIdleHeld,
    gpus_free: v.gpusFree,
    gpus_offline: v.gpusOffline,
  };
  const floats: Record<string, number> = { memory_used: v.memoryUsedMiB, power_draw: v.powerDrawWatts };
  if (v.utilizationMean !== null) floats.utilization_mean = v.utilizationMean;
  if (v.temperatureMean !== null) floats.temperature_mean = v.temperatureMean;
  return { measurement: MEASUREMENT_CLUSTER_USAGE, tags: {}, ints, floats, ts };
}

/** One GPU over one minute/hour. */
export interface GpuRollupValues {
  host: string;
  uuid: string;
  index: number;
  name: string;
  /** The project with the most GPU-seconds in the window; null: no process. */
  project: string | null;
  samples: number;
  metrics: Partial<Record<RollupGpuMetric, { mean: number; max: number }>>;
  gpuSecondsInUse: number;
  gpuSecondsIdleHeld: number;
  energyWh: number;
}

export function gpuRollupPoint(tier: RollupTier, start: number, v: GpuRollupValues): MetricPoint {
  const tags: Record<string, string> = { host: v.host, uuid: v.uuid, index: String(v.index), name: v.name };
  setTag(tags, 'project', v.project);
  const floats: Record<string, number> = {
    gpu_seconds_in_use: v.gpuSecondsInUse,
    gpu_seconds_idle_held: v.gpuSecondsIdleHeld,
    energy_wh: v.energyWh,
  };
  for (const [key, field] of ROLLUP_GPU_METRICS) {
    const m = v.metrics[key];
    if (m) {
      floats[`${field}_mean`] = m.mean;
      floats[`${field}_max`] = m.max;
    }
  }
  return {
    measurement: ROLLUP_MEASUREMENTS.gpu[tier],
    tags,
    ints: { samples: v.samples },
    floats,
    ts: start,
  };
}

/** A project, a user within a project, or the whole cluster over one minute/hour. */
export interface UsageRollupValues {
  kind: Exclude<RollupKind, 'gpu'>;
  project?: string;
  institution?: string | null;
  user?: string;
  gpuSecondsInUse: number;
  gpuSecondsIdleHeld: number;
  energyWh: number;
  /** Energy of the GPU-seconds held idle (part of `energyWh`); absent in points written before it existed. */
  energyWhIdleHeld?: number;
  /** Share-weighted (project, user) or plain (cluster) mean utilization; null when unknown. */
  utilizationMean: number | null;
  /** Means over the window (GPU count, MiB, W). */
  gpusInUseMean: number;
  gpusIdleHeldMean: number;
  memoryUsedMean: number;
  powerDrawMean: number;
  /** Cluster only. */
  temperatureMean?: number | null;
  gpusMean?: number;
}

export function usageRollupPoint(tier: RollupTier, start: number, v: UsageRollupValues): MetricPoint {
  const tags: Record<string, string> = {};
  setTag(tags, 'project', v.project);
  setTag(tags, 'institution', v.institution);
  setTag(tags, 'user', v.user);
  const floats: Record<string, number> = {
    gpu_seconds_in_use: v.gpuSecondsInUse,
    gpu_seconds_idle_held: v.gpuSecondsIdleHeld,
    energy_wh: v.energyWh,
    gpus_in_use_mean: v.gpusInUseMean,
    gpus_idle_held_mean: v.gpusIdleHeldMean,
    memory_used_mean: v.memoryUsedMean,
    power_draw_mean: v.powerDrawMean,
  };
  if (v.energyWhIdleHeld !== undefined) floats.energy_wh_idle_held = v.energyWhIdleHeld;
  if (v.utilizationMean !== null) floats.utilization_mean = v.utilizationMean;
  if (v.temperatureMean !== null && v.temperatureMean !== undefined)
    floats.temperature_mean = v.temperatureMean;
  if (v.gpusMean !== undefined) floats.gpus_mean = v.gpusMean;
  return { measurement: ROLLUP_MEASUREMENTS[v.kind][tier], tags, floats, ts: start };
}

// ---- history: metric names of the API → measurement/field per scope and tier ----

/** History metric names are the protocol's (`HISTORY_METRICS`: the registry's plus the usage series). */
export { HISTORY_METRICS, type HistoryMetric };

const GPU_HISTORY: Partial<Record<HistoryMetric, string>> = Object.fromEntries(
  GPU_HISTORY_METRICS.map((m) => [m.history, m.field]),
);
const PROJECT_RAW: Partial<Record<HistoryMetric, string>> = {
  utilization: 'utilization_mean',
  memory: 'memory_used',
  power: 'power_draw',
  gpus_in_use: 'gpus_in_use',
  gpus_idle_held: 'gpus_idle_held',
};
const USAGE_ROLLUP: Partial<Record<HistoryMetric, string>> = {
  utilization: 'utilization_mean',
  memory: 'memory_used_mean',
  power: 'power_draw_mean',
  gpus_in_use: 'gpus_in_use_mean',
  gpus_idle_held: 'gpus_idle_held_mean',
};

/**
 * Where a history metric lives: measurement and field for a scope (`gpu` and `node` read per-GPU
 * data; `project` and `cluster` their own usage series) and tier; null when the scope has no such metric.
 */
export function historySource(
  scope: 'gpu' | 'node' | 'project' | 'cluster',
  metric: HistoryMetric,
  tier: 'raw' | RollupTier,
): { measurement: string; field: string } | null {
  if (scope === 'gpu' || scope === 'node') {
    const f = GPU_HISTORY[metric];
    if (!f) return null;
    return tier === 'raw'
      ? { measurement: MEASUREMENT_GPU, field: f }
      : { measurement: ROLLUP_MEASUREMENTS.gpu[tier], field: `${f}_mean` };
  }
  if (scope === 'project') {
    const f = tier === 'raw' ? PROJECT_RAW[metric] : USAGE_ROLLUP[metric];
    if (!f) return null;
    return {
      measurement: tier === 'raw' ? MEASUREMENT_PROJECT_USAGE : ROLLUP_MEASUREMENTS.project[tier],
      field: f,
    };
  }
  const f =
    metric === 'temperature'
      ? 'temperature_mean'
      : tier === 'raw'
        ? PROJECT_RAW[metric]
        : USAGE_ROLLUP[metric];
  if (!f) return null;
  return {
    measurement: tier === 'raw' ? MEASUREMENT_CLUSTER_USAGE : ROLLUP_MEASUREMENTS.cluster[tier],
    field: f,
  };
}

/** Fields of the usage rollups summed by the usage API. */
export const USAGE_SUM_FIELDS = {
  busy: 'gpu_seconds_in_use',
  idle: 'gpu_seconds_idle_held',
  energy: 'energy_wh',
  idleEnergy: 'energy_wh_idle_held',
} as const;
