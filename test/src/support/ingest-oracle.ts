// An independent oracle for "what must InfluxDB hold for these accepted samples": the mapping of
// protocol keys to measurements, tags and fields written out from server/README.md and
// server/src/storage/schema.ts (Telegraf's nvidia_smi names), values exactly as sent.
import {
  ErrorCodeSchema,
  type GpuMetrics,
  type GpuProcess,
  type HostMetrics,
  type Sample,
  SampleRejectCodeSchema,
} from '@gpupulse/protocol';

type Kind = 'int' | 'float' | 'string' | 'boolint';
/** GPU keys → `nvidia_smi` fields; `slow`: written on change and at least once a minute. */
export const GPU_FIELD_MAP: ReadonlyArray<readonly [keyof GpuMetrics, string, Kind, boolean]> = [
  ['utilizationGpuPercent', 'utilization_gpu', 'int', false],
  ['utilizationMemoryPercent', 'utilization_memory', 'int', false],
  ['utilizationEncoderPercent', 'utilization_encoder', 'int', false],
  ['utilizationDecoderPercent', 'utilization_decoder', 'int', false],
  ['memoryUsedMiB', 'memory_used', 'int', false],
  ['memoryTotalMiB', 'memory_total', 'int', false],
  ['memoryFreeMiB', 'memory_free', 'int', false],
  ['memoryReservedMiB', 'memory_reserved', 'int', false],
  ['temperatureCelsius', 'temperature_gpu', 'int', false],
  ['memoryTemperatureCelsius', 'temperature_memory', 'int', false],
  ['fanSpeedPercent', 'fan_speed', 'int', false],
  ['pcieLinkGenCurrent', 'pcie_link_gen_current', 'int', true],
  ['pcieLinkWidthCurrent', 'pcie_link_width_current', 'int', true],
  ['clocksSmMHz', 'clocks_current_sm', 'int', false],
  ['clocksMemoryMHz', 'clocks_current_memory', 'int', false],
  ['clocksGraphicsMHz', 'clocks_current_graphics', 'int', false],
  ['clocksMaxSmMHz', 'clocks_max_sm', 'int', true],
  ['clocksMaxMemoryMHz', 'clocks_max_memory', 'int', true],
  ['clocksMaxGraphicsMHz', 'clocks_max_graphics', 'int', true],
  ['clocksEventReasonsActive', 'clocks_event_reasons', 'int', false],
  ['eccErrorsCorrectedVolatile', 'ecc_errors_corrected_volatile', 'int', false],
  ['eccErrorsUncorrectedVolatile', 'ecc_errors_uncorrected_volatile', 'int', false],
  ['eccErrorsCorrectedAggregate', 'ecc_errors_corrected_aggregate', 'int', true],
  ['eccErrorsUncorrectedAggregate', 'ecc_errors_uncorrected_aggregate', 'int', true],
  ['powerDrawWatts', 'power_draw', 'float', false],
  ['powerLimitWatts', 'power_limit', 'float', false],
  ['powerEnforcedLimitWatts', 'enforced_power_limit', 'float', true],
  ['driverVersion', 'driver_version', 'string', true],
  ['cudaVersion', 'cuda_version', 'string', true],
  ['serial', 'serial', 'string', true],
  ['pciBusId', 'pci_bus_id', 'string', true],
  ['state', 'state', 'string', false],
  ['eccModeCurrent', 'ecc_mode_current', 'boolint', true],
  ['retiredPagesPending', 'retired_pages_pending', 'boolint', true],
  ['remappedRowsPending', 'remapped_rows_pending', 'boolint', true],
  ['remappedRowsFailure', 'remapped_rows_failure', 'boolint', true],
  ['persistenceMode', 'persistence_mode', 'boolint', true],
  ['migModeCurrent', 'mig_mode_current', 'boolint', true],
];

/** Host keys → `gpupulse_host` fields. */
export const HOST_FIELD_MAP: ReadonlyArray<readonly [keyof HostMetrics, string]> = [
  ['cpuPercent', 'cpu_percent'],
  ['load1', 'load1'],
  ['load5', 'load5'],
  ['load15', 'load15'],
  ['netRxBytesPerSec', 'net_rx_bytes_per_sec'],
  ['netTxBytesPerSec', 'net_tx_bytes_per_sec'],
  ['uptimeSeconds', 'uptime_seconds'],
  ['memoryUsedBytes', 'memory_used'],
  ['memoryTotalBytes', 'memory_total'],
  ['swapUsedBytes', 'swap_used'],
  ['swapTotalBytes', 'swap_total'],
];

/** Without a projects file every process is attributed to this project. */
export const UNASSIGNED = 'unassigned';
const SLOW_EVERY_MS = 60_000;

export interface ExpectedPoint {
  measurement: 'nvidia_smi' | 'gpupulse_host' | 'gpupulse_process';
  /** What identifies the point within its measurement (pid for processes). */
  identity: Record<string, string>;
  ts: number;
  tags: Record<string, string>;
  /** Fields that must be stored with exactly these values. */
  fields: Record<string, unknown>;
  /** Fields that may be stored (a slow field repeated), with exactly these values when they are. */
  optional: Record<string, unknown>;
}

/**
 * A name (tag value) as InfluxDB stores it, per the rule documented in server/README.md and
 * server/src/storage/line-protocol.ts, written out here independently: a character Go's
 * `unicode.IsPrint` refuses (controls, format characters such as U+200D, separators other than
 * the ASCII space …) or U+FFFD becomes `?`; then a backslash at the end or before a backslash,
 * space, `,` or `=` becomes U+29F5. Everything else is stored exactly as sent.
 */
export function storedName(s: string): string {
  let out = '';
  for (const ch of s) {
    const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch) && ch !== '\uFFFD';
    out += printable ? ch : '?';
  }
  const chars = Array.from(out);
  return chars
    .map((ch, i) => {
      if (ch !== '\\') return ch;
      const next = chars[i + 1];
      return next === undefined || next === '\\' || next === ' ' || next === ',' || next === '='
        ? '\u29f5'
        : ch;
    })
    .join('');
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function fieldValue(kind: Kind, v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (kind === 'boolint') return typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
  if (kind === 'string') return typeof v === 'string' && v !== '' ? v : undefined;
  return finite(v) ? v : undefined; // exactly as sent: never rounded
}

function processUser(p: GpuProcess): string | null {
  if (p.user) return p.user;
  if (p.slurmUser) return p.slurmUser;
  if (p.uid !== null && p.uid !== undefined) return `uid:${p.uid}`;
  return null;
}

/**
 * The points InfluxDB must hold for one node, given the samples the server accepted, report by
 * report (the server applies a report's samples in `ts` order). The node is new: no processes in
 * effect before the first sample, and every GPU's first point carries its slow fields.
 */
export function expectedPoints(
  node: string,
  acceptedReports: readonly (readonly Sample[])[],
): ExpectedPoint[] {
  const out: ExpectedPoint[] = [];
  const host = storedName(node);
  let processes: readonly GpuProcess[] = [];
  const gate = new Map<string, { ts: number; sig: string }>();
  for (const report of acceptedReports) {
    const ordered = [...report].sort((a, b) => a.ts - b.ts);
    for (const s of ordered) {
      if (s.processes !== undefined) processes = s.processes;
      for (const g of s.gpus) {
        let sig = '';
        for (const [key, , , slow] of GPU_FIELD_MAP) if (slow) sig += `${g[key] ?? ''}|`;
        const prev = gate.get(g.uuid);
        const slowIncluded = !prev || s.ts < prev.ts || s.ts - prev.ts >= SLOW_EVERY_MS || prev.sig !== sig;
        if (slowIncluded && !(prev && s.ts < prev.ts)) gate.set(g.uuid, { ts: s.ts, sig });
        const tags: Record<string, string> = {
          host,
          index: String(g.index),
          uuid: storedName(g.uuid),
          name: storedName(g.name),
        };
        if (g.pstate) tags.pstate = storedName(g.pstate);
        if (g.computeMode) tags.compute_mode = storedName(g.computeMode);
        if (processes.some((p) => p.gpuUuid === g.uuid)) tags.project = UNASSIGNED;
        const fields: Record<string, unknown> = {};
        const optional: Record<string, unknown> = {};
        for (const [key, field, kind, slow] of GPU_FIELD_MAP) {
          const v = fieldValue(kind, g[key]);
          if (v === undefined) continue;
          if (slow && !slowIncluded) optional[field] = v;
          else fields[field] = v;
        }
        out.push({
          measurement: 'nvidia_smi',
          identity: { host, uuid: tags.uuid!, index: String(g.index) },
          ts: s.ts,
          tags,
          fields,
          optional,
        });
      }
      if (s.host) {
        const fields: Record<string, unknown> = {};
        for (const [key, field] of HOST_FIELD_MAP) {
          const v = s.host[key];
          if (finite(v)) fields[field] = v;
        }
        if (Object.keys(fields).length > 0)
          out.push({
            measurement: 'gpupulse_host',
            identity: { host },
            ts: s.ts,
            tags: { host },
            fields,
            optional: {},
          });
      }
      if (s.processes !== undefined && processes.length > 0) {
        const slots = new Map<string, number>();
        for (const p of [...processes].sort((a, b) => a.pid - b.pid)) {
          const user = processUser(p);
          const group = JSON.stringify([p.gpuUuid, user, UNASSIGNED]);
          const slot = slots.get(group) ?? 0;
          slots.set(group, slot + 1);
          const tags: Record<string, string> = {
            host,
            uuid: storedName(p.gpuUuid),
            project: UNASSIGNED,
            slot: String(slot),
          };
          if (user) tags.user = storedName(user);
          const fields: Record<string, unknown> = { pid: p.pid };
          if (finite(p.usedMemoryMiB)) fields.used_memory = p.usedMemoryMiB;
          if (p.name !== '') fields.process_name = p.name;
          if (p.slurmJobId) fields.slurm_job_id = p.slurmJobId;
          if (p.k8sNamespace) fields.k8s_namespace = p.k8sNamespace;
          out.push({
            measurement: 'gpupulse_process',
            identity: { host, uuid: storedName(p.gpuUuid), pid: String(p.pid) },
            ts: s.ts,
            tags,
            fields,
            optional: {},
          });
        }
      }
    }
  }
  return out;
}

/** An InfluxQL string literal (single quotes; backslash, quote and newline escaped). */
export function influxStringLiteral(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
}

export interface PropertyAck {
  accepted: Set<number>;
  /** Why each refused seq was refused: `CODE: message`. */
  reasons: Map<number, string>;
}

const REPORT_CODES = new Set<string>(ErrorCodeSchema.options);
const SAMPLE_CODES = new Set<string>(SampleRejectCodeSchema.options);

/**
 * Reads a `samples:report` ack (issue 9's per-sample shape `{acked, rejected: [{seq, index, code,
 * message}]}`, or a whole-report failure) and checks it: every acked seq was sent, none is acked
 * twice or both acked and rejected, every rejection has a known code and a message. A seq in
 * neither list was not taken (the agent resends it later): nothing of it may be stored either.
 */
export function readAck(raw: unknown, seqs: readonly number[]): PropertyAck {
  const ack = raw as
    | {
        ok: true;
        data: {
          acked: number[];
          rejected?: { seq: number | null; index: number; code: string; message: string }[];
        };
      }
    | { ok: false; error: { code: string; message: string } };
  const accepted = new Set<number>();
  const reasons = new Map<number, string>();
  if (!ack || typeof ack !== 'object') throw new Error(`not an ack: ${JSON.stringify(raw)}`);
  if (!ack.ok) {
    if (!REPORT_CODES.has(ack.error?.code)) throw new Error(`unknown error code in ${JSON.stringify(raw)}`);
    for (const s of seqs) reasons.set(s, `${ack.error.code}: ${ack.error.message}`);
    return { accepted, reasons };
  }
  for (const s of ack.data.acked) {
    if (!seqs.includes(s)) throw new Error(`ack names seq ${s} that the report did not hold`);
    if (accepted.has(s)) throw new Error(`ack names seq ${s} twice`);
    accepted.add(s);
  }
  for (const r of ack.data.rejected ?? []) {
    const seq = r.seq ?? seqs[r.index];
    if (seq === undefined || seqs[r.index] !== seq)
      throw new Error(`a rejection that names no sample of the report: ${JSON.stringify(r)}`);
    if (accepted.has(seq) || reasons.has(seq))
      throw new Error(`seq ${seq} both acked and rejected, or rejected twice`);
    if (!SAMPLE_CODES.has(r.code) || typeof r.message !== 'string' || r.message === '')
      throw new Error(`a rejection without a known code and a message: ${JSON.stringify(r)}`);
    reasons.set(seq, `${r.code}: ${r.message}`);
  }
  for (const s of seqs) if (!accepted.has(s) && !reasons.has(s)) reasons.set(s, 'NOT_TAKEN: in neither list');
  return { accepted, reasons };
}
