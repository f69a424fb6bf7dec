import { z } from 'zod';

/** Wire protocol version. The server refuses agents that speak another one. */
export const PROTOCOL_VERSION = 1;

/** Hard limits, enforced by the schemas and by the server's Socket.IO `maxHttpBufferSize`. */
export const LIMITS = {
  /** Longest node name, GPU name, user name, project id … (characters). */
  maxNameLength: 256,
  /** Longest command line / error message kept (characters). */
  maxTextLength: 4096,
  maxGpusPerSample: 64,
  maxProcessesPerSample: 2048,
  maxSamplesPerBatch: 600,
  /** Largest `samples:report` the server takes (bytes, as sent); a bigger one is answered `TOO_LARGE`. */
  maxMessageBytes: 4 * 1024 * 1024,
  /**
   * Largest frame the server's transport reads (Socket.IO `maxHttpBufferSize`): above
   * `maxMessageBytes` so that an oversized report still reaches the server and gets its
   * `TOO_LARGE` ack; a frame beyond this closes the connection.
   */
  maxTransportBytes: 16 * 1024 * 1024,
} as const;

/**
 * Value ranges, from what hardware, drivers and kernels can report. A value outside its range is
 * a bug or garbage (a unit mix-up, an overflow, `1e300`), never a reading: the sample is refused
 * (`VALIDATION`) rather than stored. `int`: the value is stored as an InfluxDB integer, so a
 * fraction is refused too (live and stored values are always equal; nothing is rounded).
 */
export const BOUNDS = {
  /** Utilization, fan speed. */
  percent: { min: 0, max: 100 },
  /** GPU and memory temperature, °C. */
  celsius: { min: -40, max: 150 },
  /** GPU memory, MiB (2^40 MiB = 1 EiB). */
  mib: { min: 0, max: 2 ** 40 },
  /** Power draw and limits of one GPU, W (the largest boards draw ~1.2 kW). */
  watts: { min: 0, max: 10_000 },
  /** Clock rates, MHz. */
  mhz: { min: 0, max: 100_000 },
  /** Counters (ECC errors, bitmasks): integers within int64 that a JS number holds exactly. */
  counter: { min: 0, max: Number.MAX_SAFE_INTEGER },
  /** PCIe link generation and width. */
  pcieGen: { min: 0, max: 16 },
  pcieWidth: { min: 0, max: 64 },
  /** Host memory, swap, file systems, bytes. */
  bytes: { min: 0, max: Number.MAX_SAFE_INTEGER },
  /** Network and disk rates, bytes per second (10^13 B/s = 80 Tbit/s). */
  bytesPerSec: { min: 0, max: 1e13 },
  /** Load averages. */
  load: { min: 0, max: 1e6 },
  /** Uptime, s (~317 years). */
  seconds: { min: 0, max: 1e10 },
  /** Durations the agent measures, ms (~11 days). */
  durationMs: { min: 0, max: 1e9 },
  /** Process ids, user ids (32-bit). */
  id32: { min: 0, max: 2 ** 32 - 1 },
  /** CPU cores of one host. */
  cores: { min: 0, max: 1_048_576 },
  /**
   * Timestamps, ms since the epoch: 2001-09-09 … 2286-11-20. Catches seconds or microseconds
   * sent by mistake; the server also checks a window around its own clock (see README).
   */
  timestampMs: { min: 1e12, max: 1e13 },
} as const;
export type BoundName = keyof typeof BOUNDS;

const INT_MESSAGE =
  'must be an integer (stored as an InfluxDB integer; fractions are refused, never rounded)';

/** A bounded finite number. */
const num = (b: BoundName) => z.number().finite().min(BOUNDS[b].min).max(BOUNDS[b].max);
/** A bounded integer (stored as an InfluxDB integer). */
const int = (b: BoundName) => z.number().int(INT_MESSAGE).min(BOUNDS[b].min).max(BOUNDS[b].max);

const name = z.string().min(1).max(LIMITS.maxNameLength);
const text = z.string().max(LIMITS.maxTextLength);
/** A metric that the source may not report: `null` means unknown, never 0. Float, bounded. */
const metric = (b: BoundName) => num(b).nullable();
const optMetric = (b: BoundName) => metric(b).optional();
/** The same for integer metrics (stored as InfluxDB integers). */
const intMetric = (b: BoundName) => int(b).nullable();
const optIntMetric = (b: BoundName) => intMetric(b).optional();
/** A timestamp, ms since the epoch. */
const timestamp = z
  .number()
  .int(INT_MESSAGE)
  .min(BOUNDS.timestampMs.min, 'must be ms since the epoch (this looks like seconds)')
  .max(BOUNDS.timestampMs.max, 'must be ms since the epoch (this looks like microseconds)');

/** Node names: hostnames as the field gives them; no control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
export const NodeNameSchema = name.regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters');

export const GpuStateSchema = z.enum(['ok', 'stale', 'error']);
export type GpuState = z.infer<typeof GpuStateSchema>;

export const MigDeviceSchema = z.object({
  index: z.number().int().min(0).max(1023),
  uuid: name.nullable(),
  profile: name.nullable(),
  gpuInstanceId: z.number().int().min(0).max(1023).nullable(),
  computeInstanceId: z.number().int().min(0).max(1023).nullable(),
  memoryTotalMiB: optIntMetric('mib'),
  memoryUsedMiB: optIntMetric('mib'),
});
export type MigDevice = z.infer<typeof MigDeviceSchema>;

/**
 * One GPU's metrics at one instant. Keys are camelCase with the unit in the name.
 * Required keys are always present (value may be null = not reported by the driver);
 * optional keys are sent by agents that collect them.
 */
export const GpuMetricsSchema = z.object({
  index: z.number().int().min(0).max(1023),
  uuid: name,
  name: name,
  state: GpuStateSchema.default('ok'),
  /** Why the GPU is `stale` / `error` (e.g. nvidia-smi's message). */
  error: text.nullable().optional(),

  utilizationGpuPercent: intMetric('percent'),
  utilizationMemoryPercent: intMetric('percent'),
  memoryUsedMiB: intMetric('mib'),
  memoryTotalMiB: intMetric('mib'),
  temperatureCelsius: intMetric('celsius'),
  powerDrawWatts: metric('watts'),
  powerLimitWatts: metric('watts'),
  fanSpeedPercent: intMetric('percent'),
  pstate: z.string().max(8).nullable(),
  clocksSmMHz: intMetric('mhz'),
  clocksMemoryMHz: intMetric('mhz'),

  utilizationEncoderPercent: optIntMetric('percent'),
  utilizationDecoderPercent: optIntMetric('percent'),
  memoryFreeMiB: optIntMetric('mib'),
  memoryReservedMiB: optIntMetric('mib'),
  memoryTemperatureCelsius: optIntMetric('celsius'),
  powerEnforcedLimitWatts: optMetric('watts'),
  clocksGraphicsMHz: optIntMetric('mhz'),
  clocksMaxSmMHz: optIntMetric('mhz'),
  clocksMaxMemoryMHz: optIntMetric('mhz'),
  clocksMaxGraphicsMHz: optIntMetric('mhz'),
  /** `clocks_event_reasons.active` (or pre-535 `clocks_throttle_reasons.active`) as a number. */
  clocksEventReasonsActive: optIntMetric('counter'),
  /** Decoded names of the active clock event reasons (e.g. `hw_thermal_slowdown`). */
  clocksEventReasons: z.array(z.string().max(64)).max(32).optional(),
  eccModeCurrent: z.boolean().nullable().optional(),
  eccErrorsCorrectedVolatile: optIntMetric('counter'),
  eccErrorsUncorrectedVolatile: optIntMetric('counter'),
  eccErrorsCorrectedAggregate: optIntMetric('counter'),
  eccErrorsUncorrectedAggregate: optIntMetric('counter'),
  retiredPagesPending: z.boolean().nullable().optional(),
  remappedRowsPending: z.boolean().nullable().optional(),
  remappedRowsFailure: z.boolean().nullable().optional(),
  pcieLinkGenCurrent: optIntMetric('pcieGen'),
  pcieLinkWidthCurrent: optIntMetric('pcieWidth'),
  persistenceMode: z.boolean().nullable().optional(),
  computeMode: z.string().max(64).nullable().optional(),
  migModeCurrent: z.boolean().nullable().optional(),
  migDevices: z.array(MigDeviceSchema).max(64).optional(),
  driverVersion: z.string().max(64).nullable().optional(),
  cudaVersion: z.string().max(64).nullable().optional(),
  serial: z.string().max(64).nullable().optional(),
  pciBusId: z.string().max(64).nullable().optional(),
});
export type GpuMetrics = z.infer<typeof GpuMetricsSchema>;

/** Host metrics, from `systeminformation` and `/proc`. */
export const HostMetricsSchema = z.object({
  cpuPercent: metric('percent'),
  memoryUsedBytes: intMetric('bytes'),
  memoryTotalBytes: intMetric('bytes'),
  load1: metric('load'),
  load5: metric('load'),
  load15: metric('load'),
  netRxBytesPerSec: metric('bytesPerSec'),
  netTxBytesPerSec: metric('bytesPerSec'),
  uptimeSeconds: metric('seconds'),
  cpuPerCorePercent: z.array(num('percent')).max(1024).optional(),
  swapUsedBytes: optIntMetric('bytes'),
  swapTotalBytes: optIntMetric('bytes'),
  /** Per network interface (loopback and virtual interfaces left out), bytes per second. */
  netInterfaces: z
    .array(
      z.object({ name: name, rxBytesPerSec: metric('bytesPerSec'), txBytesPerSec: metric('bytesPerSec') }),
    )
    .max(256)
    .optional(),
  /** Block device I/O summed over whole disks, bytes per second. */
  diskReadBytesPerSec: optMetric('bytesPerSec'),
  diskWriteBytesPerSec: optMetric('bytesPerSec'),
  /** Filesystem usage per mount point (refreshed every minute or so, not per sample). */
  filesystems: z
    .array(
      z.object({
        mount: text,
        fsType: z.string().max(64).nullable(),
        sizeBytes: metric('bytes'),
        usedBytes: metric('bytes'),
        availableBytes: metric('bytes'),
      }),
    )
    .max(128)
    .optional(),
});
export type HostMetrics = z.infer<typeof HostMetricsSchema>;

/** Facts about one compute process on a GPU; the server maps them to a project. */
export const GpuProcessSchema = z.object({
  gpuUuid: name,
  pid: int('id32'),
  usedMemoryMiB: intMetric('mib'),
  /**
   * On a GPU in MIG mode: the GPU instance and compute instance the process runs in (from the
   * default `nvidia-smi` table; `--query-compute-apps` names only the parent GPU). The server
   * counts the process as its MIG instance's fraction of the GPU.
   */
  gpuInstanceId: z.number().int().min(0).max(1023).nullable().optional(),
  computeInstanceId: z.number().int().min(0).max(1023).nullable().optional(),
  name: text,
  cmdline: text.nullable().optional(),
  uid: int('id32').nullable().optional(),
  user: name.nullable().optional(),
  /** Process start time, ms since the epoch. */
  startedAt: num('counter').nullable().optional(),
  slurmJobId: name.nullable().optional(),
  slurmAccount: name.nullable().optional(),
  slurmUser: name.nullable().optional(),
  k8sPodUid: name.nullable().optional(),
  k8sNamespace: name.nullable().optional(),
  k8sQosClass: z.string().max(32).nullable().optional(),
  containerId: name.nullable().optional(),
  /** Chosen environment variables (e.g. GPUPULSE_PROJECT) read from /proc/<pid>/environ. */
  env: z.record(z.string().max(128), text).optional(),
});
export type GpuProcess = z.infer<typeof GpuProcessSchema>;

/** The agent's own health, sent in every sample. */
export const AgentStatsSchema = z.object({
  collectorDurationsMs: z.record(z.string().max(64), num('durationMs')).optional(),
  collectorErrors: z.record(z.string().max(64), int('counter')).optional(),
  spoolBytes: optMetric('bytes'),
  spoolSamples: optMetric('counter'),
  droppedSamples: optMetric('counter'),
});
export type AgentStats = z.infer<typeof AgentStatsSchema>;

/** Where the GPU collector stands on this node. `absent`: no nvidia-smi on this machine. */
export const GpuCollectorStateSchema = z.enum(['ok', 'absent', 'stale', 'error']);
export type GpuCollectorState = z.infer<typeof GpuCollectorStateSchema>;

/** Something the driver reported about a GPU (e.g. an XID error from the kernel log). */
export const GpuEventSchema = z.object({
  kind: z.enum(['xid', 'driver']),
  gpuUuid: name.nullable(),
  /** PCI bus id as the kernel log names the GPU, when the uuid is not known. */
  pciBusId: z.string().max(64).nullable().optional(),
  /** The XID number for `xid`. */
  code: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .nullable(),
  message: text,
  ts: timestamp,
});
export type GpuEvent = z.infer<typeof GpuEventSchema>;

/** Identifies one process on one GPU (used to say it has gone). */
export const GpuProcessKeySchema = z.object({ gpuUuid: name, pid: int('id32') });
export type GpuProcessKey = z.infer<typeof GpuProcessKeySchema>;

/** One sample: everything an agent observed on its node at one instant. */
export const SampleSchema = z.object({
  /** Monotonic per agent (restart-safe when a spool dir is used). */
  seq: int('counter'),
  /** The agent's clock, ms since the epoch (the server also checks it against its own clock). */
  ts: timestamp,
  gpuCollector: GpuCollectorStateSchema,
  gpuError: text.nullable().optional(),
  gpus: z.array(GpuMetricsSchema).max(LIMITS.maxGpusPerSample),
  host: HostMetricsSchema.nullable(),
  /**
   * Compute processes. With `processesMode: 'full'` (the default) this is the complete list;
   * with `'delta'` it holds only new or changed processes and `processesGone` the ones that
   * ended. Omitted: no change since the last sample.
   */
  processes: z.array(GpuProcessSchema).max(LIMITS.maxProcessesPerSample).optional(),
  processesMode: z.enum(['full', 'delta']).optional(),
  processesGone: z.array(GpuProcessKeySchema).max(LIMITS.maxProcessesPerSample).optional(),
  /** Driver events (XID errors …) seen since the last sample. */
  gpuEvents: z.array(GpuEventSchema).max(256).optional(),
  agent: AgentStatsSchema.optional(),
});
export type Sample = z.infer<typeof SampleSchema>;

export const SamplesReportSchema = z.object({
  samples: z.array(SampleSchema).min(1).max(LIMITS.maxSamplesPerBatch),
  /** True when these samples are replayed from the spool (sent after live ones). */
  replay: z.boolean().optional(),
});
export type SamplesReport = z.infer<typeof SamplesReportSchema>;

/**
 * The outer shape of a report, checked before its samples: the server validates each sample on
 * its own (`SampleSchema`) so that one bad sample does not sink the valid ones beside it.
 */
export const SamplesReportEnvelopeSchema = z.object({
  samples: z.array(z.unknown()).min(1).max(LIMITS.maxSamplesPerBatch),
  replay: z.boolean().optional(),
});

/** Per-sample refusal codes in `SamplesAckData.rejected`: resending such a sample cannot succeed. */
export const SampleRejectCodeSchema = z.enum(['VALIDATION', 'TOO_OLD', 'TOO_NEW']);
export type SampleRejectCode = z.infer<typeof SampleRejectCodeSchema>;

/** One sample the server refused (and will refuse again): drop it, count it, log the reason. */
export const RejectedSampleSchema = z.object({
  /** The sample's `seq`; null when the sample has no valid `seq` (then `index` says which one). */
  seq: z.number().int().nullable(),
  /** Position of the sample in the report. */
  index: z.number().int().min(0),
  code: SampleRejectCodeSchema,
  /** Safe to log, e.g. `gpus.0.temperatureCelsius: Too big: expected number to be <=150`. */
  message: z.string(),
});
export type RejectedSample = z.infer<typeof RejectedSampleSchema>;

export const SamplesAckDataSchema = z.object({
  /** Sequence numbers now stored (or queued for storage) by the server: forget them. */
  acked: z.array(z.number().int()),
  /**
   * Samples of this report refused for good (invalid, or `ts` outside the server's window): drop
   * them. Absent when none was. Samples in neither list were not taken: resend them later.
   */
  rejected: z.array(RejectedSampleSchema).optional(),
  /** The server's clock, ms since the epoch. */
  serverTime: z.number(),
});
export type SamplesAckData = z.infer<typeof SamplesAckDataSchema>;

/** Static inventory, sent once per connection. */
export const InventorySchema = z.object({
  agentVersion: z.string().max(64),
  hostname: name,
  os: text.nullable(),
  kernel: text.nullable(),
  cpuModel: text.nullable(),
  cpuCores: intMetric('cores'),
  memoryTotalBytes: metric('bytes'),
  nvidiaSmiVersion: text.nullable().optional(),
  driverVersion: z.string().max(64).nullable().optional(),
  cudaVersion: z.string().max(64).nullable().optional(),
  gpus: z
    .array(
      z.object({
        index: z.number().int().min(0).max(1023),
        uuid: name,
        name: name,
        memoryTotalMiB: intMetric('mib'),
      }),
    )
    .max(LIMITS.maxGpusPerSample),
});
export type Inventory = z.infer<typeof InventorySchema>;

/** Socket.IO handshake `auth` of an agent on `/agent`. */
export const AgentAuthSchema = z.object({
  token: z.string().min(1).max(512),
  node: NodeNameSchema,
  protocolVersion: z.number().int(),
  agentVersion: z.string().max(64).optional(),
  /** The agent's sampling interval; the server derives `stale` (3 intervals without a sample) from it. */
  intervalMs: z.number().int().min(100).max(3_600_000).optional(),
});
export type AgentAuth = z.infer<typeof AgentAuthSchema>;

/** Socket.IO handshake `auth` of a dashboard on `/dashboard` (token only if the server requires one). */
export const DashboardAuthSchema = z.object({
  token: z.string().max(512).optional(),
  protocolVersion: z.number().int().optional(),
});
export type DashboardAuth = z.infer<typeof DashboardAuthSchema>;

// ---- live state, server → dashboards and HTTP ----

export const NodeStatusSchema = z.enum(['online', 'stale', 'offline']);
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

export const GpuViewSchema = GpuMetricsSchema.extend({
  /** Project the GPU's usage is attributed to (`unassigned` when a process has no match); null: no process. */
  project: z.string().nullable(),
  /** Users with processes on this GPU (empty in privacy mode). */
  users: z.array(z.string()).optional(),
  /** Slurm job ids / pod names of the processes on this GPU. */
  jobs: z.array(z.string()).optional(),
  /** Number of compute processes on this GPU. */
  processCount: z.number().int().optional(),
  /** Since when (server ms) a process has held this GPU below the idle threshold; null: not idle-held. */
  idleHeldSince: z.number().nullable().optional(),
  /** True when held-but-idle for at least the configured window (default 10 min). */
  idleHeld: z.boolean().optional(),
});
export type GpuView = z.infer<typeof GpuViewSchema>;

export const NodeViewSchema = z.object({
  node: z.string(),
  status: NodeStatusSchema,
  connected: z.boolean(),
  /** Server time of the last sample, ms. */
  lastSeen: z.number().nullable(),
  /** Agent timestamp of the last sample, ms. */
  lastSampleTs: z.number().nullable(),
  gpuCollector: GpuCollectorStateSchema.nullable(),
  gpuError: z.string().nullable(),
  host: HostMetricsSchema.nullable(),
  gpus: z.array(GpuViewSchema),
});
export type NodeView = z.infer<typeof NodeViewSchema>;

export const StorageKindSchema = z.enum(['influxdb', 'managed-influxdb', 'memory']);
export type StorageKind = z.infer<typeof StorageKindSchema>;

/**
 * What a storage warning is about, for dashboards to say in their own language: `memory` (the
 * in-memory store: 2 hours kept, nothing survives a restart), `memory-influxd-failed` (the same,
 * because the managed influxd failed to start), `influx-unreachable` (InfluxDB does not answer).
 */
export const StorageWarningCodeSchema = z.enum(['memory', 'memory-influxd-failed', 'influx-unreachable']);
export type StorageWarningCode = z.infer<typeof StorageWarningCodeSchema>;

export const StorageInfoSchema = z.object({
  kind: StorageKindSchema,
  /** Human-readable warning (English), e.g. "in-memory storage: no history survives a restart". */
  warning: z.string().nullable(),
  /** What `warning` is about (absent when there is none, or from an older server): dashboards translate it. */
  warningCode: StorageWarningCodeSchema.optional(),
  ok: z.boolean(),
});
export type StorageInfo = z.infer<typeof StorageInfoSchema>;

export const FleetSnapshotSchema = z.object({
  serverTime: z.number(),
  intervalMs: z.number(),
  storage: StorageInfoSchema,
  nodes: z.array(NodeViewSchema),
});
export type FleetSnapshot = z.infer<typeof FleetSnapshotSchema>;

/**
 * The keys of one GPU that changed since the previous delta; `index` says which GPU. `state` loses
 * its default here: a patch without it must not reset a stale GPU to `ok` (fleet.test.ts).
 */
export const GpuPatchSchema = GpuViewSchema.partial().extend({
  index: z.number().int().min(0),
  state: GpuStateSchema.optional(),
});
export type GpuPatch = z.infer<typeof GpuPatchSchema>;

/**
 * The keys of one node that changed since the previous delta (absent = unchanged). Its GPUs are
 * patched by `index`; a node whose GPU list itself changed is sent in full in `nodes` instead.
 */
export const NodePatchSchema = NodeViewSchema.omit({ gpus: true })
  .partial()
  .extend({ node: z.string(), gpus: z.array(GpuPatchSchema).optional() });
export type NodePatch = z.infer<typeof NodePatchSchema>;

export const FleetDeltaSchema = z.object({
  serverTime: z.number(),
  /** Nodes sent in full: new ones, ones whose GPU list changed, and all after a new client joined. */
  nodes: z.array(NodeViewSchema),
  /** Nodes that changed, as patches of only the changed keys (most nodes, most of the time). */
  patches: z.array(NodePatchSchema).optional(),
  /** Nodes that were forgotten by the server. */
  removed: z.array(z.string()),
  storage: StorageInfoSchema.optional(),
});
export type FleetDelta = z.infer<typeof FleetDeltaSchema>;

export const HealthSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  protocolVersion: z.number(),
  uptimeSeconds: z.number(),
  storage: StorageInfoSchema,
  agents: z.number(),
  dashboards: z.number(),
  nodes: z.number(),
  gpus: z.number(),
  /** The projects file: path, when it was last loaded, and the error of the last failed (re)load. */
  projects: z
    .object({
      file: z.string().nullable(),
      projects: z.number().int(),
      loadedAt: z.number().nullable(),
      error: z.string().nullable(),
    })
    .optional(),
});
export type Health = z.infer<typeof HealthSchema>;
