import { describe, expect, it } from 'vitest';
import {
  GPU_HISTORY_METRICS,
  GPU_METRIC_BY_KEY,
  GPU_METRICS,
  type GpuMetricDef,
  gpuHistoryMetric,
  HISTORY_METRICS,
  REQUIRED_GPU_METRIC_KEYS,
} from './metrics.ts';
import { BOUNDS, GpuMetricsSchema } from './schemas.ts';

/** zod 4 internals, read only: the wrapped type, its kind and checks. */
interface ZodLike {
  def: { type: string; innerType?: ZodLike };
  minValue?: number | null;
  maxValue?: number | null;
  isInt?: boolean;
  maxLength?: number | null;
  options?: readonly string[];
}

function unwrap(schema: ZodLike): { inner: ZodLike; nullable: boolean; optional: boolean } {
  let t = schema;
  let nullable = false;
  let optional = false;
  for (;;) {
    const kind = t.def.type;
    if (kind === 'nullable') nullable = true;
    else if (kind === 'optional' || kind === 'default') optional = kind === 'optional' || optional;
    else return { inner: t, nullable, optional };
    t = t.def.innerType as ZodLike;
  }
}

const shape = GpuMetricsSchema.shape as unknown as Record<string, ZodLike>;
/** Keys of GpuMetrics that are identity or structure, not metrics: not in the registry. */
const NOT_METRICS = ['index', 'uuid', 'name', 'error', 'clocksEventReasons', 'migDevices'];
const defs: readonly GpuMetricDef[] = GPU_METRICS;

describe('GPU metric registry', () => {
  it('covers every metric of GpuMetricsSchema, and nothing else', () => {
    const schemaKeys = Object.keys(shape).filter((k) => !NOT_METRICS.includes(k));
    expect(defs.map((m) => m.key).sort()).toEqual(schemaKeys.sort());
  });

  it.each(defs.map((m) => [m.key, m] as const))(
    '%s: type, bounds, required/optional equal the schema',
    (key, m) => {
      const field = shape[key];
      if (!field) throw new Error(`GpuMetricsSchema has no ${key}`);
      const { inner, nullable, optional } = unwrap(field);
      // required keys are always sent (null = unknown); optional ones may be left out
      expect(optional, 'optional').toBe(!m.required);
      if (key !== 'state') expect(nullable, 'nullable').toBe(true);
      switch (m.type) {
        case 'int':
        case 'float': {
          expect(inner.def.type).toBe('number');
          expect(m.bound, 'bound').toBeDefined();
          const b = BOUNDS[m.bound!];
          expect([inner.minValue, inner.maxValue]).toEqual([b.min, b.max]);
          expect(inner.isInt, 'int').toBe(m.type === 'int');
          break;
        }
        case 'bool':
          expect(inner.def.type).toBe('boolean');
          break;
        case 'string':
          if (inner.def.type === 'enum') {
            for (const o of inner.options ?? []) expect(o.length).toBeLessThanOrEqual(m.maxLength ?? 0);
          } else {
            expect(inner.def.type).toBe('string');
            expect(inner.maxLength).toBe(m.maxLength);
          }
          break;
      }
    },
  );

  it('names nothing twice: keys, InfluxDB names, nvidia-smi names, history names', () => {
    const dupes = (xs: readonly string[]) => xs.filter((x, i) => xs.indexOf(x) !== i);
    expect(dupes(defs.map((m) => m.key))).toEqual([]);
    const stored = defs.map((m) => ('field' in m.storage ? m.storage.field : `tag:${m.storage.tag}`));
    expect(dupes(stored)).toEqual([]);
    expect(dupes(defs.flatMap((m) => m.smi.flat()))).toEqual([]);
    expect(dupes(defs.flatMap((m) => (m.history ? [m.history] : [])))).toEqual([]);
    expect(dupes([...HISTORY_METRICS])).toEqual([]);
    // identity tags of the nvidia_smi measurement are not metric names
    for (const s of stored)
      expect(['host', 'index', 'uuid', 'name', 'project']).not.toContain(s.replace('tag:', ''));
  });

  it('InfluxDB names are Telegraf-style snake_case; tags are strings; history metrics are numeric fields', () => {
    for (const m of defs) {
      const name = 'field' in m.storage ? m.storage.field : m.storage.tag;
      expect(name, m.key).toMatch(/^[a-z][a-z0-9_]*$/);
      if ('tag' in m.storage) expect(m.type, m.key).toBe('string');
      if (m.history) {
        expect(['int', 'float']).toContain(m.type);
        expect('field' in m.storage).toBe(true);
      }
      expect(m.label).toBe(`metrics.${m.key}`);
      if (m.type === 'int' || m.type === 'float') expect(m.bound, m.key).toBeDefined();
      else expect(m.bound, m.key).toBeUndefined();
    }
  });

  it('derives the required keys, the lookup map and the history metrics', () => {
    expect(REQUIRED_GPU_METRIC_KEYS).toEqual([
      'utilizationGpuPercent',
      'utilizationMemoryPercent',
      'memoryUsedMiB',
      'memoryTotalMiB',
      'temperatureCelsius',
      'powerDrawWatts',
      'powerLimitWatts',
      'fanSpeedPercent',
      'pstate',
      'clocksSmMHz',
      'clocksMemoryMHz',
      'state',
    ]);
    expect(GPU_METRIC_BY_KEY.get('powerDrawWatts')?.smi[0]).toEqual(['power.draw']);
    expect(HISTORY_METRICS).toEqual([
      'utilization',
      'memory',
      'temperature',
      'power',
      'clocks',
      'clocks_memory',
      'gpus_in_use',
      'gpus_idle_held',
    ]);
    expect(GPU_HISTORY_METRICS[0]).toEqual({
      key: 'utilizationGpuPercent',
      history: 'utilization',
      field: 'utilization_gpu',
      label: 'metrics.utilizationGpuPercent',
    });
    for (const name of ['temperatureCelsius', 'temperature', 'temperature_gpu'])
      expect(gpuHistoryMetric(name)?.key).toBe('temperatureCelsius');
    expect(gpuHistoryMetric('gpus_in_use')).toBeUndefined();
  });
});
