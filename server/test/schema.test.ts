import {
  GPU_METRICS,
  type GpuMetricDef,
  GpuMetricsSchema,
  type GpuProcess,
  GpuProcessSchema,
  HostMetricsSchema,
} from '@gpupulse/protocol';
import { Point } from '@influxdata/influxdb-client';
import { describe, expect, it } from 'vitest';
import { attributeUnassigned } from '../src/fleet/attribution.ts';
import type { MetricPoint } from '../src/storage/metric-store.ts';
import {
  GPU_FLOAT_FIELDS,
  GPU_INT_FIELDS,
  GPU_SLOW_FIELDS,
  gpuPoint,
  HISTORY_METRICS,
  type HistoryMetric,
  HOST_FLOAT_FIELDS,
  HOST_INT_FIELDS,
  historySource,
  hostPoint,
  processPoints,
  ROLLUP_GPU_METRICS,
  SlowFieldGate,
  samplePoints,
  toLineProtocol,
} from '../src/storage/schema.ts';
import { gpu, sample } from './helpers.ts';

const TS = 1_700_000_000_123;

describe('schema mapping', () => {
  it('maps a GPU to Telegraf nvidia_smi: ints, floats, strings; nulls omitted', () => {
    const p = gpuPoint(
      'node-a',
      TS,
      gpu(0, {
        utilizationGpuPercent: 42.6,
        fanSpeedPercent: null,
        powerDrawWatts: 300,
        memoryTemperatureCelsius: null,
        driverVersion: '550.54.15',
        computeMode: 'Default',
        clocksEventReasonsActive: 4,
        remappedRowsPending: false,
      }),
      null,
    );
    expect(p.measurement).toBe('nvidia_smi');
    expect(p.tags).toEqual({
      host: 'node-a',
      index: '0',
      uuid: 'GPU-00000000-aaaa-bbbb-cccc-dddddddddddd',
      name: 'NVIDIA H100 80GB HBM3',
      pstate: 'P0',
      compute_mode: 'Default',
    });
    expect(p.ints).toMatchObject({
      utilization_gpu: 43,
      memory_used: 20480,
      clocks_event_reasons: 4,
      remapped_rows_pending: 0,
    });
    expect(p.ints).not.toHaveProperty('fan_speed');
    expect(p.ints).not.toHaveProperty('temperature_memory');
    expect(p.floats).toEqual({ power_draw: 300, power_limit: 700 });
    expect(p.strings).toEqual({ driver_version: '550.54.15', state: 'ok' });
    expect(toLineProtocol(p)).toBe(
      'nvidia_smi,compute_mode=Default,host=node-a,index=0,name=NVIDIA\\ H100\\ 80GB\\ HBM3,pstate=P0,' +
        'uuid=GPU-00000000-aaaa-bbbb-cccc-dddddddddddd ' +
        'clocks_current_memory=2619i,clocks_current_sm=1980i,clocks_event_reasons=4i,driver_version="550.54.15",' +
        'memory_total=81559i,memory_used=20480i,power_draw=300,power_limit=700,remapped_rows_pending=0i,' +
        'state="ok",temperature_gpu=51i,utilization_gpu=43i,utilization_memory=17i 1700000000123',
    );
  });

  it('writes exactly what the client library’s Point writes for every storable name', () => {
    const hostile = ['a,b=c "d"\\e', 'x y', '노드=1', "o'q", 'k-1', 'k'];
    const p = {
      measurement: 'm e,a',
      tags: { [hostile[0]!]: hostile[1]!, host: hostile[2]!, z: hostile[3]!, empty: '' },
      ints: { [hostile[4]!]: 7.6, [hostile[5]!]: -2 },
      floats: { f: 0.1 + 0.2, big: 1e21, tiny: 1.5e-7 },
      strings: { s: hostile[0]!, t: '' },
      ts: TS,
    };
    const ref = new Point(p.measurement);
    for (const [k, v] of Object.entries(p.tags)) if (v !== '') ref.tag(k, v);
    for (const [k, v] of Object.entries(p.ints)) ref.intField(k, Math.round(v));
    for (const [k, v] of Object.entries(p.floats)) ref.floatField(k, v);
    for (const [k, v] of Object.entries(p.strings)) ref.stringField(k, v);
    ref.timestamp(TS);
    expect(toLineProtocol(p)).toBe(ref.toLineProtocol());
  });

  it('escapes hostile names; a newline in a name becomes ?, in a string field it is kept', () => {
    const hostile = 'a,b=c "d"\n';
    const p = gpuPoint('n o,d=e', TS, gpu(1, { name: hostile, serial: hostile, pstate: null }), hostile);
    const line = toLineProtocol(p)!;
    expect(line).toBe(
      'nvidia_smi,host=n\\ o\\,d\\=e,index=1,name=a\\,b\\=c\\ "d"?,project=a\\,b\\=c\\ "d"?,' +
        'uuid=GPU-00000001-aaaa-bbbb-cccc-dddddddddddd ' +
        'clocks_current_memory=2619i,clocks_current_sm=1980i,memory_total=81559i,memory_used=20480i,' +
        'power_draw=312.5,power_limit=700,serial="a,b=c \\"d\\"\n",state="ok",temperature_gpu=51i,' +
        'utilization_gpu=42i,utilization_memory=17i 1700000000123',
    );
  });

  it('maps host metrics: bytes as integers, the rest floats', () => {
    const p = hostPoint('node-a', TS, sample(1, TS).host!)!;
    expect(toLineProtocol(p)).toBe(
      'gpupulse_host,host=node-a cpu_percent=12.5,load1=1.5,load15=1,load5=1.2,memory_total=1081627930624i,' +
        'memory_used=34359738368i,net_rx_bytes_per_sec=1024,net_tx_bytes_per_sec=2048,uptime_seconds=86400 1700000000123',
    );
    const empty = hostPoint('node-a', TS, { ...sample(1, TS).host!, ...allNull() });
    expect(empty).toBeNull();
  });

  it('maps processes without pids or command lines as tags; slot separates same-series processes', () => {
    const procs: GpuProcess[] = [
      {
        gpuUuid: 'GPU-1',
        pid: 200,
        usedMemoryMiB: 512.4,
        name: 'python train.py',
        user: 'kim',
        cmdline: 'python train.py --x',
      },
      { gpuUuid: 'GPU-1', pid: 100, usedMemoryMiB: null, name: 'python', user: 'kim' },
      { gpuUuid: 'GPU-1', pid: 300, usedMemoryMiB: 1, name: 'x', uid: 1001 },
    ];
    const lines = processPoints('node-a', TS, procs, () => 'unassigned').map((p) => toLineProtocol(p));
    expect(lines).toEqual([
      'gpupulse_process,host=node-a,project=unassigned,slot=0,user=kim,uuid=GPU-1 pid=100i,process_name="python" 1700000000123',
      'gpupulse_process,host=node-a,project=unassigned,slot=1,user=kim,uuid=GPU-1 pid=200i,process_name="python train.py",used_memory=512i 1700000000123',
      'gpupulse_process,host=node-a,project=unassigned,slot=0,user=uid:1001,uuid=GPU-1 pid=300i,process_name="x",used_memory=1i 1700000000123',
    ]);
  });

  it('puts the project tag on GPUs with processes only', () => {
    const s = sample(1, TS);
    s.processes = [{ gpuUuid: s.gpus[0]!.uuid, pid: 1, usedMemoryMiB: 1, name: 'p' }];
    const points = samplePoints('node-a', s, s.processes, attributeUnassigned);
    expect(points.map((p) => [p.measurement, p.tags.project ?? null])).toEqual([
      ['nvidia_smi', 'unassigned'],
      ['nvidia_smi', null],
      ['gpupulse_host', null],
      ['gpupulse_process', 'unassigned'],
    ]);
  });

  it('always writes at least the state field, so an all-null GPU still yields a line', () => {
    const nulls = gpu(0, {
      utilizationGpuPercent: null,
      utilizationMemoryPercent: null,
      memoryUsedMiB: null,
      memoryTotalMiB: null,
      temperatureCelsius: null,
      powerDrawWatts: null,
      powerLimitWatts: null,
      clocksSmMHz: null,
      clocksMemoryMHz: null,
      pstate: null,
      state: 'stale',
    });
    expect(toLineProtocol(gpuPoint('n', TS, nulls, null))).toBe(
      'nvidia_smi,host=n,index=0,name=NVIDIA\\ H100\\ 80GB\\ HBM3,uuid=GPU-00000000-aaaa-bbbb-cccc-dddddddddddd state="stale" 1700000000123',
    );
  });
});

function allNull() {
  return {
    cpuPercent: null,
    memoryUsedBytes: null,
    memoryTotalBytes: null,
    load1: null,
    load5: null,
    load15: null,
    netRxBytesPerSec: null,
    netTxBytesPerSec: null,
    uptimeSeconds: null,
  };
}

describe('slow-changing GPU fields', () => {
  it('are written on the first sample, on change, and once a minute — the load fields every time', () => {
    const gate = new SlowFieldGate(60_000);
    const g = gpu(0, { driverVersion: '590.48.01', clocksMaxSmMHz: 1980 });
    const fields = (ts: number, x = g) => {
      const p = gpuPoint('n', ts, x, null, gate.include('n', x, ts));
      return { ...p.ints, ...p.floats, ...p.strings };
    };
    expect(fields(TS)).toMatchObject({
      driver_version: '590.48.01',
      clocks_max_sm: 1980,
      utilization_gpu: 42,
    });
    const quiet = fields(TS + 1000);
    expect(quiet).toMatchObject({ utilization_gpu: 42, memory_total: 81559, power_limit: 700 });
    expect(quiet).not.toHaveProperty('driver_version');
    expect(quiet).not.toHaveProperty('clocks_max_sm');
    expect(fields(TS + 2000, { ...g, driverVersion: '595.1' })).toMatchObject({ driver_version: '595.1' });
    expect(fields(TS + 3000, { ...g, driverVersion: '595.1' })).not.toHaveProperty('driver_version');
    expect(fields(TS + 63_000, { ...g, driverVersion: '595.1' })).toHaveProperty('driver_version');
    expect(fields(TS - 5000)).toHaveProperty('driver_version'); // a replayed sample is written whole
  });
});

describe('integer fields: the protocol refuses fractions, so live and stored values are equal', () => {
  const accepts = (schema: { safeParse(v: unknown): { success: boolean } }, v: number) =>
    schema.safeParse(v).success;
  it('every InfluxDB integer field is an integer in the protocol schema; every float field takes fractions', () => {
    const gpu = GpuMetricsSchema.shape;
    const host = HostMetricsSchema.shape;
    for (const [key, field] of GPU_INT_FIELDS) {
      expect(accepts(gpu[key], 1.5), `${key} → ${field}i refuses 1.5`).toBe(false);
      expect(accepts(gpu[key], 2), `${key} takes 2`).toBe(true);
    }
    for (const [key, field] of HOST_INT_FIELDS) {
      expect(accepts(host[key], 1.5), `${key} → ${field}i refuses 1.5`).toBe(false);
      expect(accepts(host[key], 2), `${key} takes 2`).toBe(true);
    }
    for (const [key] of GPU_FLOAT_FIELDS) expect(accepts(gpu[key], 1.5), key).toBe(true);
    for (const [key] of HOST_FLOAT_FIELDS) expect(accepts(host[key], 1.5), key).toBe(true);
    expect(accepts(GpuProcessSchema.shape.usedMemoryMiB, 1.5)).toBe(false);
    expect(accepts(GpuProcessSchema.shape.pid, 1.5)).toBe(false);
  });
  it('a valid sample is stored with exactly its values (no rounding happens)', () => {
    const s = sample(1, TS);
    const g = GpuMetricsSchema.parse(s.gpus[0]);
    const p = gpuPoint('n', TS, g, null);
    for (const [key, field] of GPU_INT_FIELDS)
      if (typeof g[key] === 'number') expect(p.ints![field]).toBe(g[key]);
    for (const [key, field] of GPU_FLOAT_FIELDS)
      if (typeof g[key] === 'number') expect(p.floats![field]).toBe(g[key]);
  });
});

describe('the GPU point follows the protocol metric registry', () => {
  /**
   * Every `nvidia_smi` field and its InfluxDB type as stored so far: InfluxDB refuses a type change,
   * so a registry edit that renames or retypes one of them must fail here (new metrics are added).
   */
  const STORED = {
    utilization_gpu: 'int',
    utilization_memory: 'int',
    utilization_encoder: 'int',
    utilization_decoder: 'int',
    memory_used: 'int',
    memory_total: 'int',
    memory_free: 'int',
    memory_reserved: 'int',
    temperature_gpu: 'int',
    temperature_memory: 'int',
    fan_speed: 'int',
    pcie_link_gen_current: 'int',
    pcie_link_width_current: 'int',
    clocks_current_sm: 'int',
    clocks_current_memory: 'int',
    clocks_current_graphics: 'int',
    clocks_max_sm: 'int',
    clocks_max_memory: 'int',
    clocks_max_graphics: 'int',
    clocks_event_reasons: 'int',
    ecc_errors_corrected_volatile: 'int',
    ecc_errors_uncorrected_volatile: 'int',
    ecc_errors_corrected_aggregate: 'int',
    ecc_errors_uncorrected_aggregate: 'int',
    ecc_mode_current: 'int',
    retired_pages_pending: 'int',
    remapped_rows_pending: 'int',
    remapped_rows_failure: 'int',
    persistence_mode: 'int',
    mig_mode_current: 'int',
    power_draw: 'float',
    power_limit: 'float',
    enforced_power_limit: 'float',
    driver_version: 'string',
    cuda_version: 'string',
    serial: 'string',
    pci_bus_id: 'string',
    state: 'string',
  } as const;
  const registry: readonly GpuMetricDef[] = GPU_METRICS;
  const value = (m: GpuMetricDef): unknown =>
    m.type === 'bool' ? true : m.type === 'string' ? (m.key === 'state' ? 'stale' : 'x') : 7;

  it('keeps every field name and type ever stored', () => {
    const stored = (p: MetricPoint) => ({
      ...Object.fromEntries(Object.keys(p.ints ?? {}).map((k) => [k, 'int'])),
      ...Object.fromEntries(Object.keys(p.floats ?? {}).map((k) => [k, 'float'])),
      ...Object.fromEntries(Object.keys(p.strings ?? {}).map((k) => [k, 'string'])),
    });
    const all = gpu(0, Object.fromEntries(registry.map((m) => [m.key, value(m)])));
    expect(stored(gpuPoint('n', TS, all, null))).toMatchObject(STORED);
  });

  it.each(registry.map((m) => [m.key, m] as const))(
    '%s is stored under its registry name and type',
    (key, m) => {
      const v = value(m);
      const p = gpuPoint('n', TS, gpu(0, { [key]: v }), null, true);
      const fast = gpuPoint('n', TS, gpu(0, { [key]: v }), null, false);
      if ('tag' in m.storage) {
        expect(p.tags[m.storage.tag]).toBe(v);
        expect(fast.tags[m.storage.tag]).toBe(v);
        return;
      }
      const f = m.storage.field;
      const where = { int: p.ints, bool: p.ints, float: p.floats, string: p.strings }[m.type];
      expect(where?.[f], f).toBe(m.type === 'bool' ? 1 : v);
      // slow fields are left out of the points between the gate's minutes; the others never are
      const inFast = { ...fast.ints, ...fast.floats, ...fast.strings };
      expect(f in inFast, `${f} in a fast-only point`).toBe(!m.slow);
      expect(GPU_SLOW_FIELDS.has(f)).toBe(m.slow);
      // a null (unknown) value is never stored
      const none = gpuPoint('n', TS, gpu(0, { [key]: null }), null);
      expect({ ...none.ints, ...none.floats, ...none.strings }).not.toHaveProperty(f);
    },
  );

  it('history and rollups read the registry’s history metrics', () => {
    for (const m of registry) {
      if (!m.history || !('field' in m.storage)) continue;
      const metric = m.history as HistoryMetric;
      expect(HISTORY_METRICS).toContain(metric);
      expect(historySource('gpu', metric, 'raw')).toEqual({
        measurement: 'nvidia_smi',
        field: m.storage.field,
      });
      expect(historySource('node', metric, '1h')).toEqual({
        measurement: 'nvidia_smi_1h',
        field: `${m.storage.field}_mean`,
      });
      expect(ROLLUP_GPU_METRICS).toContainEqual([m.key, m.storage.field]);
    }
    expect(ROLLUP_GPU_METRICS).toHaveLength(registry.filter((m) => m.history).length);
  });
});
