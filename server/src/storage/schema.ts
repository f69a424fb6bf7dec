/**
 * THE mapping from protocol keys to InfluxDB measurements, tags and fields. Nothing else in the
 * server knows InfluxDB names. GPU points follow Telegraf's `nvidia_smi` input (measurement, tag
 * keys, field names, units and types) for every metric both have; everything else is documented
 * in server/README.md. Field types are fixed here forever: InfluxDB refuses a type change.
 */

import type { GpuMetrics, GpuProcess, HostMetrics, Sample } from '@gpupulse/protocol';
import { Point } from '@influxdata/influxdb-client';
import type { MetricPoint } from './metric-store.ts';

export const MEASUREMENT_GPU = 'nvidia_smi';
export const MEASUREMENT_HOST = 'gpupulse_host';
export const MEASUREMENT_PROCESS = 'gpupulse_process';

type NumericKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends number ? K : never }[keyof T];
type StringKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends string ? K : never }[keyof T];
type BoolKey<T> = { [K in keyof T]-?: NonNullable<T[K]> extends boolean ? K : never }[keyof T];

/** GPU integer fields (Telegraf names; MiB, %, °C, MHz). */
export const GPU_INT_FIELDS: ReadonlyArray<readonly [NumericKey<GpuMetrics>, string]> = [
  ['utilizationGpuPercent', 'utilization_gpu'],
  ['utilizationMemoryPercent', 'utilization_memory'],
  ['utilizationEncoderPercent', 'utilization_encoder'],
  ['utilizationDecoderPercent', 'utilization_decoder'],
  ['memoryUsedMiB', 'memory_used'],
  ['memoryTotalMiB', 'memory_total'],
  ['memoryFreeMiB', 'memory_free'],
  ['memoryReservedMiB', 'memory_reserved'],
  ['temperatureCelsius', 'temperature_gpu'],
  ['memoryTemperatureCelsius', 'temperature_memory'],
  ['fanSpeedPercent', 'fan_speed'],
  ['pcieLinkGenCurrent', 'pcie_link_gen_current'],
  ['pcieLinkWidthCurrent', 'pcie_link_width_current'],
  ['clocksSmMHz', 'clocks_current_sm'],
  ['clocksMemoryMHz', 'clocks_current_memory'],
  ['clocksGraphicsMHz', 'clocks_current_graphics'],
  ['clocksMaxSmMHz', 'clocks_max_sm'],
  ['clocksMaxMemoryMHz', 'clocks_max_memory'],
  ['clocksMaxGraphicsMHz', 'clocks_max_graphics'],
  // our additions
  ['clocksEventReasonsActive', 'clocks_event_reasons'],
  ['eccErrorsCorrectedVolatile', 'ecc_errors_corrected_volatile'],
  ['eccErrorsUncorrectedVolatile', 'ecc_errors_uncorrected_volatile'],
  ['eccErrorsCorrectedAggregate', 'ecc_errors_corrected_aggregate'],
  ['eccErrorsUncorrectedAggregate', 'ecc_errors_uncorrected_aggregate'],
];

/** GPU float fields (W). */
export const GPU_FLOAT_FIELDS: ReadonlyArray<readonly [NumericKey<GpuMetrics>, string]> = [
  ['powerDrawWatts', 'power_draw'],
  ['powerLimitWatts', 'power_limit'],
  ['powerEnforcedLimitWatts', 'enforced_power_limit'],
];

/** GPU string fields. */
export const GPU_STRING_FIELDS: ReadonlyArray<readonly [StringKey<GpuMetrics>, string]> = [
  ['driverVersion', 'driver_version'],
  ['cudaVersion', 'cuda_version'],
  ['serial', 'serial'],
  ['pciBusId', 'pci_bus_id'],
  ['state', 'state'],
];

/** GPU booleans, stored as integers 0/1 (our additions). */
export const GPU_BOOL_INT_FIELDS: ReadonlyArray<readonly [BoolKey<GpuMetrics>, string]> = [
  ['eccModeCurrent', 'ecc_mode_current'],
  ['retiredPagesPending', 'retired_pages_pending'],
  ['remappedRowsPending', 'remapped_rows_pending'],
  ['remappedRowsFailure', 'remapped_rows_failure'],
  ['persistenceMode', 'persistence_mode'],
  ['migModeCurrent', 'mig_mode_current'],
];

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

/** The `nvidia_smi` point of one GPU. `project`: the attributed project, null when the GPU has no process. */
export function gpuPoint(node: string, ts: number, gpu: GpuMetrics, project: string | null): MetricPoint {
  const tags: Record<string, string> = {
    host: node,
    index: String(gpu.index),
    uuid: gpu.uuid,
    name: gpu.name,
  };
  setTag(tags, 'pstate', gpu.pstate);
  setTag(tags, 'compute_mode', gpu.computeMode);
  setTag(tags, 'project', project);
  const ints: Record<string, number> = {};
  const floats: Record<string, number> = {};
  const strings: Record<string, string> = {};
  for (const [key, field] of GPU_INT_FIELDS) {
    const v = gpu[key];
    if (isNum(v)) ints[field] = Math.round(v);
  }
  for (const [key, field] of GPU_BOOL_INT_FIELDS) {
    const v = gpu[key];
    if (typeof v === 'boolean') ints[field] = v ? 1 : 0;
  }
  for (const [key, field] of GPU_FLOAT_FIELDS) {
    const v = gpu[key];
    if (isNum(v)) floats[field] = v;
  }
  for (const [key, field] of GPU_STRING_FIELDS) {
    const v = gpu[key];
    if (typeof v === 'string' && v !== '') strings[field] = v;
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
  const sorted = [...processes].sort((a, b) => a.pid - b.pid);
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

/** Every point of one sample. `processes`: the sample's list, or the node's last known list. */
export function samplePoints(
  node: string,
  sample: Sample,
  processes: readonly GpuProcess[],
  attribute: Attribute,
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
    points.push(gpuPoint(node, sample.ts, gpu, attribute(node, gpu, byGpu.get(gpu.uuid) ?? [])));
  }
  if (sample.host) {
    const hp = hostPoint(node, sample.ts, sample.host);
    if (hp) points.push(hp);
  }
  if (sample.processes && sample.processes.length > 0) {
    points.push(
      ...processPoints(node, sample.ts, sample.processes, (p) => {
        return attribute(node, { uuid: p.gpuUuid, index: indexOf.get(p.gpuUuid) ?? -1 }, [p]) ?? 'unassigned';
      }),
    );
  }
  return points;
}

/** One line of line protocol (escaping by `Point`, never by hand), or null when the point has no field. */
export function toLineProtocol(p: MetricPoint): string | null {
  const point = new Point(p.measurement);
  for (const [k, v] of Object.entries(p.tags)) if (v !== '') point.tag(k, v);
  if (p.ints) for (const [k, v] of Object.entries(p.ints)) point.intField(k, Math.round(v));
  if (p.floats) for (const [k, v] of Object.entries(p.floats)) point.floatField(k, v);
  if (p.strings) for (const [k, v] of Object.entries(p.strings)) point.stringField(k, v);
  point.timestamp(Math.trunc(p.ts));
  return point.toLineProtocol() ?? null;
}
