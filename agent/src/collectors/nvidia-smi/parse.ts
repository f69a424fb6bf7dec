// Pure parsing of `nvidia-smi` CSV output. No I/O here: see collector.ts for the child processes.
import type { GpuMetricDef, GpuMetrics, GpuProcess, MetricType, MigDevice } from '@gpupulse/protocol';
import { BOUNDS, GPU_METRICS, LIMITS } from '@gpupulse/protocol';

/** A value nvidia-smi prints instead of a number or string: `[N/A]`, `N/A`, `[Not Supported]`, … */
export function isNullToken(raw: string): boolean {
  const v = raw.trim();
  if (v === '' || v === 'N/A' || v === 'n/a') return true;
  return v.startsWith('[') && v.endsWith(']');
}

/** A trimmed string, or null for any null token (never `''`, never `[N/A]`). */
export function parseText(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const v = raw.trim();
  return isNullToken(v) ? null : v;
}

const NUMBER_WITH_UNIT = /^(-?\d+(?:\.\d+)?)(?: [A-Za-z%/]+)?$/;

/** A finite number (units like `W`, `MiB`, `%` tolerated), or null. Never NaN, never a made-up 0. */
export function parseNumber(raw: string | undefined): number | null {
  const v = parseText(raw);
  if (v === null) return null;
  if (/^0x[0-9a-f]+$/i.test(v)) return parseHex(v);
  const m = NUMBER_WITH_UNIT.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/** `0x00000000000001FF` → 511; null tokens or garbage → null. */
export function parseHex(raw: string | undefined): number | null {
  const v = parseText(raw);
  if (v === null || !/^0x[0-9a-f]+$/i.test(v)) return null;
  const n = Number(BigInt(v));
  return Number.isFinite(n) ? n : null;
}

const TRUE_WORDS = new Set(['enabled', 'yes', 'active', 'true', 'on']);
const FALSE_WORDS = new Set(['disabled', 'no', 'not active', 'false', 'off']);

/** `Enabled`/`Yes`/`Active` → true, `Disabled`/`No`/`Not Active` → false, anything else → null. */
export function parseBool(raw: string | undefined): boolean | null {
  const v = parseText(raw)?.toLowerCase();
  if (v === undefined) return null;
  if (TRUE_WORDS.has(v)) return true;
  if (FALSE_WORDS.has(v)) return false;
  return null;
}

/** Bits of `clocks_event_reasons.active` (NVML `nvmlClocksEventReason*`). */
export const CLOCK_EVENT_REASONS: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'gpu_idle'],
  [0x2, 'applications_clocks_setting'],
  [0x4, 'sw_power_cap'],
  [0x8, 'hw_slowdown'],
  [0x10, 'sync_boost'],
  [0x20, 'sw_thermal_slowdown'],
  [0x40, 'hw_thermal_slowdown'],
  [0x80, 'hw_power_brake_slowdown'],
  [0x100, 'display_clock_setting'],
];

export function decodeClockEventReasons(mask: number | null): string[] | undefined {
  if (mask === null) return undefined;
  return CLOCK_EVENT_REASONS.filter(([bit]) => (mask & bit) !== 0).map(([, name]) => name);
}

/**
 * Splits one CSV row on `", "` and checks the column count. nvidia-smi does not quote values;
 * when a row has more columns than expected and `freeTextColumn` is given (e.g. a process name
 * with a comma), the extra pieces are joined back into that column. Otherwise: null (bad row).
 */
export function splitRow(line: string, expected: number, freeTextColumn?: number): string[] | null {
  const parts = line.replace(/\r$/, '').split(', ');
  if (parts.length === expected) return parts;
  if (parts.length > expected && freeTextColumn !== undefined && freeTextColumn < expected) {
    const extra = parts.length - expected;
    const merged = parts.slice(freeTextColumn, freeTextColumn + extra + 1).join(', ');
    return [...parts.slice(0, freeTextColumn), merged, ...parts.slice(freeTextColumn + extra + 1)];
  }
  return null;
}

/** Header cell `memory.used [MiB]` → `memory.used`. */
export function headerFieldName(cell: string): string {
  return cell.trim().replace(/\s*\[[^\]]*\]$/, '');
}

// ---- field discovery ----

/**
 * Every property name (canonical names and their aliases) listed by `nvidia-smi --help-query-gpu`
 * (or `--help-query-compute-apps`): lines such as `"clocks.current.sm" or "clocks.sm"`.
 */
export function parseHelpQuery(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('"')) continue;
    for (const m of line.matchAll(/"([^"]+)"/g)) if (m[1]) names.add(m[1]);
  }
  return names;
}

/**
 * One `--query-gpu` column group we read: the GpuMetrics key it fills, its nvidia-smi names
 * (newest first, aliases after) and its kind. Derived from the protocol's metric registry
 * (`GPU_METRICS`); index, uuid and name are the row's identity.
 */
export interface GpuFieldSpec {
  key: keyof GpuMetrics;
  names: readonly string[];
  kind: MetricType;
  /** Required: always queried, even when --help-query-gpu does not list it. */
  core?: boolean;
}

const IDENTITY_FIELDS: readonly GpuFieldSpec[] = [
  { key: 'index', names: ['index'], kind: 'int', core: true },
  { key: 'uuid', names: ['uuid', 'gpu_uuid'], kind: 'string', core: true },
  { key: 'name', names: ['name', 'gpu_name'], kind: 'string', core: true },
];

/** Every column group the collector may query: identity, then each registry metric's groups. */
export const GPU_FIELDS: readonly GpuFieldSpec[] = [
  ...IDENTITY_FIELDS,
  ...GPU_METRICS.flatMap((m: GpuMetricDef) =>
    m.smi.map((names) => ({ key: m.key, names, kind: m.type, ...(m.smiAlways ? { core: true } : {}) })),
  ),
];

/** The `--query-gpu` field list: for each spec, the first name this nvidia-smi supports. */
export function planGpuQuery(supported: ReadonlySet<string>): string[] {
  const fields: string[] = [];
  for (const spec of GPU_FIELDS) {
    const name = spec.names.find((n) => supported.has(n)) ?? (spec.core ? spec.names[0] : undefined);
    if (name && !fields.includes(name)) fields.push(name);
  }
  return fields;
}

// ---- rows → GpuMetrics ----

/** Registry metrics read from `--query-gpu` (the others are set by the collector). */
const QUERIED_METRICS: readonly GpuMetricDef[] = GPU_METRICS.filter((m: GpuMetricDef) => m.smi.length > 0);

/**
 * A cell parsed as its registry type. A number outside the metric's bounds, or a fraction for an
 * integer metric, is not a reading the protocol accepts (the server would refuse the whole
 * sample): it becomes null (unknown), and `onInvalid` hears of it.
 */
function parseCell(
  m: GpuMetricDef,
  raw: string | undefined,
  onInvalid?: (key: string, raw: string) => void,
): number | boolean | string | null {
  switch (m.type) {
    case 'int':
    case 'float': {
      const n = parseNumber(raw);
      if (n === null || m.bound === undefined) return n;
      const b = BOUNDS[m.bound];
      if (n < b.min || n > b.max || (m.type === 'int' && !Number.isInteger(n))) {
        onInvalid?.(m.key, raw ?? '');
        return null;
      }
      return n;
    }
    case 'bool':
      return parseBool(raw);
    case 'string': {
      const v = parseText(raw);
      return v === null ? null : v.slice(0, m.maxLength ?? LIMITS.maxNameLength);
    }
  }
}

function clip(s: string | null, max: number): string | null {
  return s === null ? null : s.slice(0, max);
}

/**
 * Maps one row (field name → raw cell) to GpuMetrics; null when it has no usable index. Every
 * registry metric that the row has a column for is set; required metrics always are (null when
 * absent). `onInvalid`: a cell that was read but refused (see `parseCell`).
 */
export function toGpuMetrics(
  cells: ReadonlyMap<string, string>,
  fallbackIndex?: number,
  onInvalid?: (key: string, raw: string) => void,
): GpuMetrics | null {
  const raw = (names: readonly string[]): string | undefined => {
    for (const n of names) {
      const v = cells.get(n);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const indexCell = cells.get('index');
  let index: number | null = parseNumber(indexCell);
  if (index === null && indexCell === undefined && fallbackIndex !== undefined) index = fallbackIndex;
  if (index === null || !Number.isInteger(index) || index < 0 || index > 1023) return null;

  const out: Record<string, unknown> = {
    index,
    uuid: clip(parseText(raw(['uuid', 'gpu_uuid'])) ?? `index-${index}`, LIMITS.maxNameLength),
    name: clip(parseText(raw(['name', 'gpu_name'])) ?? 'unknown GPU', LIMITS.maxNameLength),
  };
  for (const m of QUERIED_METRICS) {
    let seen = false;
    let value: number | boolean | string | null = null;
    // fallback groups: the first one with a value wins (power.draw → instant → average)
    for (const names of m.smi) {
      const v = raw(names);
      if (v === undefined) continue;
      seen = true;
      value = parseCell(m, v, onInvalid);
      if (value !== null) break;
    }
    if (seen || m.required) out[m.key] = value;
  }
  const reasons = decodeClockEventReasons(
    (out.clocksEventReasonsActive as number | null | undefined) ?? null,
  );
  if (reasons) out.clocksEventReasons = reasons;
  out.state = 'ok';
  return out as GpuMetrics;
}

/** One `noheader` row of our own query (fields in `fields` order) → GpuMetrics, or null if malformed. */
export function parseGpuRow(
  line: string,
  fields: readonly string[],
  fallbackIndex?: number,
  onInvalid?: (key: string, raw: string) => void,
): GpuMetrics | null {
  const parts = splitRow(line, fields.length);
  if (!parts) return null;
  const cells = new Map<string, string>();
  for (let i = 0; i < fields.length; i++) cells.set(fields[i] as string, parts[i] ?? '');
  return toGpuMetrics(cells, fallbackIndex, onInvalid);
}

/**
 * A `--query-gpu` CSV with a header line (any field subset, units or not) → GpuMetrics[].
 * Throws on a row whose column count does not match the header. Without an `index` column the
 * row position is the index.
 */
export function parseGpuCsv(text: string): GpuMetrics[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const [header, ...rows] = lines;
  if (header === undefined) return [];
  const fields = header.split(', ').map(headerFieldName);
  return rows.map((line, i) => {
    const gpu = parseGpuRow(line, fields, i);
    if (!gpu) throw new Error(`query-gpu row ${i + 1}: expected ${fields.length} columns`);
    return gpu;
  });
}

// ---- compute apps ----

/** The `--query-compute-apps` fields the collector asks for, in this order. */
export const COMPUTE_APP_FIELDS = ['gpu_uuid', 'pid', 'process_name', 'used_gpu_memory'] as const;

const APP_ALIASES: Record<string, string> = { name: 'process_name', used_memory: 'used_gpu_memory' };

/** Rows of `--query-compute-apps` (header given by `fields`, or read from the first line) → processes. */
export function parseComputeApps(text: string, fields?: readonly string[]): GpuProcess[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  let names = fields ? [...fields] : undefined;
  if (!names) {
    const header = lines.shift();
    if (header === undefined) return [];
    names = header.split(', ').map(headerFieldName);
  }
  names = names.map((n) => APP_ALIASES[n] ?? n);
  const free = names.indexOf('process_name');
  const out: GpuProcess[] = [];
  for (const line of lines) {
    const parts = splitRow(line, names.length, free >= 0 ? free : undefined);
    if (!parts) continue;
    const cell = (n: string) => {
      const i = names.indexOf(n);
      return i < 0 ? undefined : parts[i];
    };
    const pid = parseNumber(cell('pid'));
    const gpuUuid = parseText(cell('gpu_uuid'));
    if (pid === null || !Number.isInteger(pid) || pid < 0 || gpuUuid === null) continue;
    out.push({
      gpuUuid: gpuUuid.slice(0, LIMITS.maxNameLength),
      pid,
      name: (parseText(cell('process_name')) ?? '').slice(0, LIMITS.maxTextLength),
      usedMemoryMiB: parseNumber(cell('used_gpu_memory')),
    });
  }
  return out;
}

// ---- loop output ----

/**
 * Groups loop-mode rows into rounds. nvidia-smi prints no separator between rounds, so a
 * round ends when an index repeats, when `expected` rows (the previous round's size) have
 * arrived, or when the caller's quiet timer calls `flush()`.
 */
export class RoundAssembler<T extends { index: number }> {
  private current: T[] = [];
  private readonly seen = new Set<number>();
  private expected = 0;

  /** Adds a row; returns the round it completed, if any. */
  push(row: T): T[] | null {
    let done: T[] | null = null;
    if (this.seen.has(row.index)) done = this.take();
    this.current.push(row);
    this.seen.add(row.index);
    if (done === null && this.expected > 0 && this.current.length >= this.expected) done = this.take();
    return done;
  }

  /** Ends the current round (quiet timer): returns it, or null when empty. */
  flush(): T[] | null {
    return this.current.length > 0 ? this.take() : null;
  }

  get pending(): number {
    return this.current.length;
  }

  private take(): T[] {
    const done = this.current;
    this.current = [];
    this.seen.clear();
    this.expected = done.length;
    return done;
  }
}

// ---- --version ----

export interface NvidiaSmiVersion {
  nvidiaSmiVersion: string | null;
  driverVersion: string | null;
  cudaVersion: string | null;
}

/** `nvidia-smi --version` → versions (older drivers print only the banner table; then nulls). */
export function parseVersion(text: string): NvidiaSmiVersion {
  const get = (re: RegExp) => re.exec(text)?.[1]?.trim() ?? null;
  return {
    nvidiaSmiVersion: get(/^NVIDIA-SMI version\s*:\s*(.+)$/m) ?? get(/NVIDIA-SMI\s+([\d.]+)/),
    driverVersion: get(/^DRIVER version\s*:\s*(.+)$/m) ?? get(/Driver Version:\s*([\d.]+)/),
    cudaVersion: get(/^CUDA Version\s*:\s*(.+)$/m) ?? get(/CUDA Version:\s*([\d.]+)/),
  };
}

// ---- MIG (`nvidia-smi -L` and the default table) ----

export interface ListedGpu {
  index: number;
  name: string;
  uuid: string | null;
  mig: Array<{ index: number; profile: string | null; uuid: string | null }>;
}

/** `nvidia-smi -L`: GPUs and their MIG devices (`  MIG 3g.71gb  Device  0: (UUID: MIG-…)`). */
export function parseListGpus(text: string): ListedGpu[] {
  const out: ListedGpu[] = [];
  for (const line of text.split('\n')) {
    const gpu = /^GPU (\d+): (.+?)(?: \(UUID: ([^)]+)\))?\s*$/.exec(line);
    if (gpu) {
      out.push({ index: Number(gpu[1]), name: (gpu[2] ?? '').trim(), uuid: gpu[3] ?? null, mig: [] });
      continue;
    }
    const mig = /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*(?:\(UUID: ([^)]+)\))?/.exec(line);
    const last = out[out.length - 1];
    if (mig && last) last.mig.push({ index: Number(mig[2]), profile: mig[1] ?? null, uuid: mig[3] ?? null });
  }
  return out;
}

export interface MigTableRow {
  gpu: number;
  gpuInstanceId: number | null;
  computeInstanceId: number | null;
  migDevice: number;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
}

/**
 * The `MIG devices:` table of the default `nvidia-smi` output: one row per MIG device with GPU,
 * GI id, CI id, MIG device index and its memory usage (`16925MiB / 71424MiB`).
 */
export function parseMigTable(text: string): MigTableRow[] {
  const start = text.indexOf('MIG devices:');
  if (start < 0) return [];
  const out: MigTableRow[] = [];
  const lines = text.slice(start).split('\n');
  for (const line of lines.slice(1)) {
    if (/Processes:/.test(line)) break;
    const m =
      /^\|\s+(\d+)\s+(\d+|N\/A)\s+(\d+|N\/A)\s+(\d+)\s+\|\s+(\d+)MiB\s*\/\s*(\d+)MiB/.exec(line) ??
      /^\|\s+(\d+)\s+(\d+|N\/A)\s+(\d+|N\/A)\s+(\d+)\s+\|/.exec(line);
    if (!m) continue;
    const num = (s: string | undefined) => (s === undefined || s === 'N/A' ? null : Number(s));
    out.push({
      gpu: Number(m[1]),
      gpuInstanceId: num(m[2]),
      computeInstanceId: num(m[3]),
      migDevice: Number(m[4]),
      memoryUsedMiB: num(m[5]),
      memoryTotalMiB: num(m[6]),
    });
  }
  return out;
}

/**
 * The `Processes:` table of the default `nvidia-smi` output on MIG GPUs: which GPU instance and
 * compute instance each process runs in (`|    0    2    1     12249      C   /root/tools/memhog   2194MiB |`).
 * Rows without GI/CI ids (`N/A`, GPUs not in MIG mode) are left out.
 */
export function parseMigProcesses(
  text: string,
): Array<{ gpu: number; gpuInstanceId: number; computeInstanceId: number; pid: number }> {
  const start = text.indexOf('Processes:');
  if (start < 0) return [];
  const out: Array<{ gpu: number; gpuInstanceId: number; computeInstanceId: number; pid: number }> = [];
  for (const line of text.slice(start).split('\n').slice(1)) {
    const m = /^\|\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S/.exec(line);
    if (!m) continue;
    out.push({
      gpu: Number(m[1]),
      gpuInstanceId: Number(m[2]),
      computeInstanceId: Number(m[3]),
      pid: Number(m[4]),
    });
  }
  return out;
}

/** MIG devices per GPU index, joining `-L` (profile, uuid) with the table (GI/CI ids, memory). */
export function migDevicesByGpu(
  list: readonly ListedGpu[],
  table: readonly MigTableRow[],
): Map<number, MigDevice[]> {
  const out = new Map<number, MigDevice[]>();
  for (const g of list) {
    const devices: MigDevice[] = g.mig.map((d) => {
      const row = table.find((r) => r.gpu === g.index && r.migDevice === d.index);
      return {
        index: d.index,
        uuid: d.uuid,
        profile: d.profile,
        gpuInstanceId: row?.gpuInstanceId ?? null,
        computeInstanceId: row?.computeInstanceId ?? null,
        memoryTotalMiB: row?.memoryTotalMiB ?? null,
        memoryUsedMiB: row?.memoryUsedMiB ?? null,
      };
    });
    out.set(g.index, devices);
  }
  return out;
}
