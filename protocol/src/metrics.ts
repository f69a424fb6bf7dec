/**
 * THE GPU metric registry: one entry per metric of `GpuMetrics`, and everything the packages need
 * to know about it. The agent's nvidia-smi query and parser (`agent/src/collectors/nvidia-smi/
 * parse.ts`), the server's InfluxDB points, slow-field gate, rollups and history mapping
 * (`server/src/storage/schema.ts`) and the web's chart metrics and labels (`web/src/lib/
 * history.ts`) are derived from it; `metrics.test.ts` checks it against `GpuMetricsSchema`.
 * Adding a metric is one entry here (plus the schema field it describes) and its parser test.
 */
import type { BoundName, GpuMetrics } from './schemas.ts';

/** How a value travels and is stored: `int` and `bool` become InfluxDB integers (bools 0/1). */
export type MetricType = 'int' | 'float' | 'bool' | 'string';

/** Where the value goes in the `nvidia_smi` measurement (Telegraf's names where Telegraf has the metric). */
export type MetricStorage = { readonly field: string } | { readonly tag: string };

export interface GpuMetricDef {
  /** The `GpuMetrics` key (camelCase, unit in the name). */
  readonly key: keyof GpuMetrics;
  readonly type: MetricType;
  /** Display unit; null for unitless values (counters, booleans, strings). */
  readonly unit: '%' | 'MiB' | '°C' | 'W' | 'MHz' | null;
  /** Range (`BOUNDS`) of a numeric metric; the schema refuses values outside it. */
  readonly bound?: BoundName;
  /** Longest string kept (strings only). */
  readonly maxLength?: number;
  /** Always present in a sample (null = not reported); otherwise sent by agents that collect it. */
  readonly required: boolean;
  readonly storage: MetricStorage;
  /**
   * `nvidia-smi --query-gpu` names. Each group is queried (its first name this nvidia-smi lists,
   * newest first, aliases after); the value is the first group's that is not null (fallbacks,
   * e.g. `power.draw` → `power.draw.instant` → `power.draw.average`). Empty: not read from
   * `--query-gpu` (set by the collector).
   */
  readonly smi: readonly (readonly string[])[];
  /** Queried even when `--help-query-gpu` does not list it (fields every nvidia-smi has). */
  readonly smiAlways?: boolean;
  /** Describes the board more than its load: stored on change and once a minute, not every second. */
  readonly slow: boolean;
  /** Name of the metric in `GET /api/v1/history` (and rolled up per GPU: `<field>_mean`, `<field>_max`). */
  readonly history?: string;
  /** i18n message key of the metric's label (web `src/i18n`). */
  readonly label: string;
}

const field = (name: string) => ({ field: name }) as const;
const tag = (name: string) => ({ tag: name }) as const;

/** The registry. Order is the order of the `--query-gpu` columns (after index, uuid, name). */
export const GPU_METRICS = [
  {
    key: 'utilizationGpuPercent',
    type: 'int',
    unit: '%',
    bound: 'percent',
    required: true,
    storage: field('utilization_gpu'),
    smi: [['utilization.gpu']],
    smiAlways: true,
    slow: false,
    history: 'utilization',
    label: 'metrics.utilizationGpuPercent',
  },
  {
    key: 'utilizationMemoryPercent',
    type: 'int',
    unit: '%',
    bound: 'percent',
    required: true,
    storage: field('utilization_memory'),
    smi: [['utilization.memory']],
    smiAlways: true,
    slow: false,
    label: 'metrics.utilizationMemoryPercent',
  },
  {
    key: 'memoryUsedMiB',
    type: 'int',
    unit: 'MiB',
    bound: 'mib',
    required: true,
    storage: field('memory_used'),
    smi: [['memory.used']],
    smiAlways: true,
    slow: false,
    history: 'memory',
    label: 'metrics.memoryUsedMiB',
  },
  {
    key: 'memoryTotalMiB',
    type: 'int',
    unit: 'MiB',
    bound: 'mib',
    required: true,
    storage: field('memory_total'),
    smi: [['memory.total']],
    smiAlways: true,
    slow: false,
    label: 'metrics.memoryTotalMiB',
  },
  {
    key: 'temperatureCelsius',
    type: 'int',
    unit: '°C',
    bound: 'celsius',
    required: true,
    storage: field('temperature_gpu'),
    smi: [['temperature.gpu']],
    smiAlways: true,
    slow: false,
    history: 'temperature',
    label: 'metrics.temperatureCelsius',
  },
  {
    key: 'powerDrawWatts',
    type: 'float',
    unit: 'W',
    bound: 'watts',
    required: true,
    storage: field('power_draw'),
    // `power.draw` is N/A or missing on some 570+ drivers: instant, then average.
    smi: [
      ['power.draw'],
      ['power.draw.instant', 'gpu.power.draw.instant'],
      ['power.draw.average', 'gpu.power.draw.average'],
    ],
    slow: false,
    history: 'power',
    label: 'metrics.powerDrawWatts',
  },
  {
    key: 'powerLimitWatts',
    type: 'float',
    unit: 'W',
    bound: 'watts',
    required: true,
    storage: field('power_limit'),
    smi: [['power.limit', 'gpu.power.requested_limit']],
    slow: false,
    label: 'metrics.powerLimitWatts',
  },
  {
    key: 'fanSpeedPercent',
    type: 'int',
    unit: '%',
    bound: 'percent',
    required: true,
    storage: field('fan_speed'),
    smi: [['fan.speed']],
    slow: false,
    label: 'metrics.fanSpeedPercent',
  },
  {
    key: 'pstate',
    type: 'string',
    unit: null,
    maxLength: 8,
    required: true,
    storage: tag('pstate'),
    smi: [['pstate']],
    slow: false,
    label: 'metrics.pstate',
  },
  {
    key: 'clocksSmMHz',
    type: 'int',
    unit: 'MHz',
    bound: 'mhz',
    required: true,
    storage: field('clocks_current_sm'),
    smi: [['clocks.current.sm', 'clocks.sm']],
    slow: false,
    history: 'clocks',
    label: 'metrics.clocksSmMHz',
  },
  {
    key: 'clocksMemoryMHz',
    type: 'int',
    unit: 'MHz',
    bound: 'mhz',
    required: true,
    storage: field('clocks_current_memory'),
    smi: [['clocks.current.memory', 'clocks.mem']],
    slow: false,
    history: 'clocks_memory',
    label: 'metrics.clocksMemoryMHz',
  },
  {
    key: 'clocksGraphicsMHz',
    type: 'int',
    unit: 'MHz',
    bound: 'mhz',
    required: false,
    storage: field('clocks_current_graphics'),
    smi: [['clocks.current.graphics', 'clocks.gr']],
    slow: false,
    label: 'metrics.clocksGraphicsMHz',
  },
  {
    key: 'clocksMaxSmMHz',
    type: 'int',
    unit: 'MHz',
    bound: 'mhz',
    required: false,
    storage: field('clocks_max_sm'),
    smi: [['clocks.max.sm']],
    slow: true,
    label: 'metrics.clocksMaxSmMHz',
  },
  {
    key: 'clocksMaxMemoryMHz',
    type: 'int',
    unit: 'MHz',
    bound: 'mhz',
    required: false,
    storage: field('clocks_max_memory'),
    smi: [['clocks.max.memory', 'clocks.max.mem']],
    slow: true,
    label: 'metrics.clocksMaxMemoryMHz',
  },
  {
    key: 'clocksMaxGraphicsMHz',
    type: 'int',
    unit: 'MHz',
    bound: 'mhz',
    required: false,
    storage: field('clocks_max_graphics'),
    smi: [['clocks.max.graphics', 'clocks.max.gr']],
    slow: true,
    label: 'metrics.clocksMaxGraphicsMHz',
  },
  {
    key: 'utilizationEncoderPercent',
    type: 'int',
    unit: '%',
    bound: 'percent',
    required: false,
    storage: field('utilization_encoder'),
    smi: [['utilization.encoder']],
    slow: false,
    label: 'metrics.utilizationEncoderPercent',
  },
  {
    key: 'utilizationDecoderPercent',
    type: 'int',
    unit: '%',
    bound: 'percent',
    required: false,
    storage: field('utilization_decoder'),
    smi: [['utilization.decoder']],
    slow: false,
    label: 'metrics.utilizationDecoderPercent',
  },
  {
    key: 'memoryFreeMiB',
    type: 'int',
    unit: 'MiB',
    bound: 'mib',
    required: false,
    storage: field('memory_free'),
    smi: [['memory.free']],
    slow: false,
    label: 'metrics.memoryFreeMiB',
  },
  {
    key: 'memoryReservedMiB',
    type: 'int',
    unit: 'MiB',
    bound: 'mib',
    required: false,
    storage: field('memory_reserved'),
    smi: [['memory.reserved']],
    slow: false,
    label: 'metrics.memoryReservedMiB',
  },
  {
    key: 'memoryTemperatureCelsius',
    type: 'int',
    unit: '°C',
    bound: 'celsius',
    required: false,
    storage: field('temperature_memory'),
    smi: [['temperature.memory']],
    slow: false,
    label: 'metrics.memoryTemperatureCelsius',
  },
  {
    key: 'powerEnforcedLimitWatts',
    type: 'float',
    unit: 'W',
    bound: 'watts',
    required: false,
    storage: field('enforced_power_limit'),
    smi: [['enforced.power.limit', 'gpu.power.current_limit']],
    slow: true,
    label: 'metrics.powerEnforcedLimitWatts',
  },
  {
    key: 'clocksEventReasonsActive',
    type: 'int',
    unit: null,
    bound: 'counter',
    required: false,
    storage: field('clocks_event_reasons'),
    smi: [['clocks_event_reasons.active', 'clocks_throttle_reasons.active']],
    slow: false,
    label: 'metrics.clocksEventReasonsActive',
  },
  {
    key: 'eccModeCurrent',
    type: 'bool',
    unit: null,
    required: false,
    storage: field('ecc_mode_current'),
    smi: [['ecc.mode.current']],
    slow: true,
    label: 'metrics.eccModeCurrent',
  },
  {
    key: 'eccErrorsCorrectedVolatile',
    type: 'int',
    unit: null,
    bound: 'counter',
    required: false,
    storage: field('ecc_errors_corrected_volatile'),
    smi: [['ecc.errors.corrected.volatile.total']],
    slow: false,
    label: 'metrics.eccErrorsCorrectedVolatile',
  },
  {
    key: 'eccErrorsUncorrectedVolatile',
    type: 'int',
    unit: null,
    bound: 'counter',
    required: false,
    storage: field('ecc_errors_uncorrected_volatile'),
    smi: [['ecc.errors.uncorrected.volatile.total']],
    slow: false,
    label: 'metrics.eccErrorsUncorrectedVolatile',
  },
  {
    key: 'eccErrorsCorrectedAggregate',
    type: 'int',
    unit: null,
    bound: 'counter',
    required: false,
    storage: field('ecc_errors_corrected_aggregate'),
    smi: [['ecc.errors.corrected.aggregate.total']],
    slow: true,
    label: 'metrics.eccErrorsCorrectedAggregate',
  },
  {
    key: 'eccErrorsUncorrectedAggregate',
    type: 'int',
    unit: null,
    bound: 'counter',
    required: false,
    storage: field('ecc_errors_uncorrected_aggregate'),
    smi: [['ecc.errors.uncorrected.aggregate.total']],
    slow: true,
    label: 'metrics.eccErrorsUncorrectedAggregate',
  },
  {
    key: 'retiredPagesPending',
    type: 'bool',
    unit: null,
    required: false,
    storage: field('retired_pages_pending'),
    smi: [['retired_pages.pending']],
    slow: true,
    label: 'metrics.retiredPagesPending',
  },
  {
    key: 'remappedRowsPending',
    type: 'bool',
    unit: null,
    required: false,
    storage: field('remapped_rows_pending'),
    smi: [['remapped_rows.pending']],
    slow: true,
    label: 'metrics.remappedRowsPending',
  },
  {
    key: 'remappedRowsFailure',
    type: 'bool',
    unit: null,
    required: false,
    storage: field('remapped_rows_failure'),
    smi: [['remapped_rows.failure']],
    slow: true,
    label: 'metrics.remappedRowsFailure',
  },
  {
    key: 'pcieLinkGenCurrent',
    type: 'int',
    unit: null,
    bound: 'pcieGen',
    required: false,
    storage: field('pcie_link_gen_current'),
    smi: [['pcie.link.gen.current', 'pcie.link.gen.gpucurrent']],
    slow: true,
    label: 'metrics.pcieLinkGenCurrent',
  },
  {
    key: 'pcieLinkWidthCurrent',
    type: 'int',
    unit: null,
    bound: 'pcieWidth',
    required: false,
    storage: field('pcie_link_width_current'),
    smi: [['pcie.link.width.current']],
    slow: true,
    label: 'metrics.pcieLinkWidthCurrent',
  },
  {
    key: 'persistenceMode',
    type: 'bool',
    unit: null,
    required: false,
    storage: field('persistence_mode'),
    smi: [['persistence_mode']],
    slow: true,
    label: 'metrics.persistenceMode',
  },
  {
    key: 'computeMode',
    type: 'string',
    unit: null,
    maxLength: 64,
    required: false,
    storage: tag('compute_mode'),
    smi: [['compute_mode']],
    slow: false,
    label: 'metrics.computeMode',
  },
  {
    key: 'migModeCurrent',
    type: 'bool',
    unit: null,
    required: false,
    storage: field('mig_mode_current'),
    smi: [['mig.mode.current']],
    slow: true,
    label: 'metrics.migModeCurrent',
  },
  {
    key: 'driverVersion',
    type: 'string',
    unit: null,
    maxLength: 64,
    required: false,
    storage: field('driver_version'),
    smi: [['driver_version']],
    slow: true,
    label: 'metrics.driverVersion',
  },
  {
    key: 'cudaVersion',
    type: 'string',
    unit: null,
    maxLength: 64,
    required: false,
    storage: field('cuda_version'),
    // from `nvidia-smi --version`, not `--query-gpu`
    smi: [],
    slow: true,
    label: 'metrics.cudaVersion',
  },
  {
    key: 'serial',
    type: 'string',
    unit: null,
    maxLength: 64,
    required: false,
    storage: field('serial'),
    smi: [['serial', 'gpu_serial']],
    slow: true,
    label: 'metrics.serial',
  },
  {
    key: 'pciBusId',
    type: 'string',
    unit: null,
    maxLength: 64,
    required: false,
    storage: field('pci_bus_id'),
    smi: [['pci.bus_id', 'gpu_bus_id']],
    slow: true,
    label: 'metrics.pciBusId',
  },
  {
    key: 'state',
    type: 'string',
    unit: null,
    maxLength: 8,
    required: true,
    storage: field('state'),
    // set by the collector (ok / stale / error), never read from nvidia-smi
    smi: [],
    slow: false,
    label: 'metrics.state',
  },
] as const satisfies readonly GpuMetricDef[];

export type GpuMetricKey = (typeof GPU_METRICS)[number]['key'];

/** The registry by `GpuMetrics` key. */
export const GPU_METRIC_BY_KEY: ReadonlyMap<GpuMetricKey, GpuMetricDef> = new Map(
  GPU_METRICS.map((m) => [m.key, m as GpuMetricDef]),
);

/** Keys every sample carries (value may be null). */
export const REQUIRED_GPU_METRIC_KEYS: readonly GpuMetricKey[] = GPU_METRICS.filter((m) => m.required).map(
  (m) => m.key,
);

type HistoryDef = Extract<(typeof GPU_METRICS)[number], { history: string }>;
/** A GPU metric that has history (and per-GPU rollups). */
export type GpuHistoryMetricKey = HistoryDef['key'];
/** History API names of the GPU metrics. */
export type GpuHistoryMetric = HistoryDef['history'];

/** GPU metrics with history: protocol key, history API name, InfluxDB (`nvidia_smi`) field, i18n label. */
export const GPU_HISTORY_METRICS: ReadonlyArray<{
  readonly key: GpuHistoryMetricKey;
  readonly history: GpuHistoryMetric;
  readonly field: string;
  readonly label: string;
}> = GPU_METRICS.filter((m): m is HistoryDef => 'history' in m).map((m) => ({
  key: m.key,
  history: m.history,
  field: m.storage.field,
  label: m.label,
}));

/** History metrics of the usage series (project and cluster scopes), not of one GPU. */
export const USAGE_HISTORY_METRICS = ['gpus_in_use', 'gpus_idle_held'] as const;

/** Every metric name `GET /api/v1/history` knows. */
export type HistoryMetric = GpuHistoryMetric | (typeof USAGE_HISTORY_METRICS)[number];
export const HISTORY_METRICS: readonly HistoryMetric[] = [
  ...GPU_HISTORY_METRICS.map((m) => m.history),
  ...USAGE_HISTORY_METRICS,
];

/** The history API name of a GPU metric given as protocol key, API name or InfluxDB field; undefined: not a GPU history metric. */
export function gpuHistoryMetric(name: string): (typeof GPU_HISTORY_METRICS)[number] | undefined {
  return GPU_HISTORY_METRICS.find((m) => m.key === name || m.history === name || m.field === name);
}
