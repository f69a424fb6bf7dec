import { describe, expect, it } from 'vitest';
import { BOUNDS, type BoundName, InventorySchema, SampleSchema, SamplesAckDataSchema } from './schemas.ts';

const gpu = {
  index: 0,
  uuid: 'GPU-00000000-0000-0000-0000-000000000000',
  name: 'NVIDIA H100 80GB HBM3',
  utilizationGpuPercent: 100,
  utilizationMemoryPercent: 35,
  memoryUsedMiB: 70000,
  memoryTotalMiB: 81559,
  temperatureCelsius: 64,
  powerDrawWatts: 631.95,
  powerLimitWatts: 700,
  fanSpeedPercent: null,
  pstate: 'P0',
  clocksSmMHz: 1980,
  clocksMemoryMHz: 2619,
};
const host = {
  cpuPercent: 12.5,
  memoryUsedBytes: 34359738368,
  memoryTotalBytes: 1081627930624,
  load1: 1.5,
  load5: 1.2,
  load15: 1,
  netRxBytesPerSec: 1024,
  netTxBytesPerSec: 2048,
  uptimeSeconds: 86400,
};
const proc = { gpuUuid: gpu.uuid, pid: 4242, usedMemoryMiB: 1000, name: 'python' };
const base = { seq: 1, ts: 1_760_000_000_000, gpuCollector: 'ok', gpus: [gpu], host, processes: [proc] };

type Where = 'gpu' | 'host' | 'process' | 'sample' | 'agent';
/** Every bounded numeric field of a sample: where it sits, its range, integer or not. */
const FIELDS: Array<[Where, string, BoundName, 'int' | 'float']> = [
  ['gpu', 'utilizationGpuPercent', 'percent', 'int'],
  ['gpu', 'utilizationMemoryPercent', 'percent', 'int'],
  ['gpu', 'utilizationEncoderPercent', 'percent', 'int'],
  ['gpu', 'utilizationDecoderPercent', 'percent', 'int'],
  ['gpu', 'fanSpeedPercent', 'percent', 'int'],
  ['gpu', 'memoryUsedMiB', 'mib', 'int'],
  ['gpu', 'memoryTotalMiB', 'mib', 'int'],
  ['gpu', 'memoryFreeMiB', 'mib', 'int'],
  ['gpu', 'memoryReservedMiB', 'mib', 'int'],
  ['gpu', 'temperatureCelsius', 'celsius', 'int'],
  ['gpu', 'memoryTemperatureCelsius', 'celsius', 'int'],
  ['gpu', 'powerDrawWatts', 'watts', 'float'],
  ['gpu', 'powerLimitWatts', 'watts', 'float'],
  ['gpu', 'powerEnforcedLimitWatts', 'watts', 'float'],
  ['gpu', 'clocksSmMHz', 'mhz', 'int'],
  ['gpu', 'clocksMemoryMHz', 'mhz', 'int'],
  ['gpu', 'clocksGraphicsMHz', 'mhz', 'int'],
  ['gpu', 'clocksMaxSmMHz', 'mhz', 'int'],
  ['gpu', 'clocksMaxMemoryMHz', 'mhz', 'int'],
  ['gpu', 'clocksMaxGraphicsMHz', 'mhz', 'int'],
  ['gpu', 'clocksEventReasonsActive', 'counter', 'int'],
  ['gpu', 'eccErrorsCorrectedVolatile', 'counter', 'int'],
  ['gpu', 'eccErrorsUncorrectedVolatile', 'counter', 'int'],
  ['gpu', 'eccErrorsCorrectedAggregate', 'counter', 'int'],
  ['gpu', 'eccErrorsUncorrectedAggregate', 'counter', 'int'],
  ['gpu', 'pcieLinkGenCurrent', 'pcieGen', 'int'],
  ['gpu', 'pcieLinkWidthCurrent', 'pcieWidth', 'int'],
  ['host', 'cpuPercent', 'percent', 'float'],
  ['host', 'memoryUsedBytes', 'bytes', 'int'],
  ['host', 'memoryTotalBytes', 'bytes', 'int'],
  ['host', 'swapUsedBytes', 'bytes', 'int'],
  ['host', 'swapTotalBytes', 'bytes', 'int'],
  ['host', 'load1', 'load', 'float'],
  ['host', 'load5', 'load', 'float'],
  ['host', 'load15', 'load', 'float'],
  ['host', 'netRxBytesPerSec', 'bytesPerSec', 'float'],
  ['host', 'netTxBytesPerSec', 'bytesPerSec', 'float'],
  ['host', 'diskReadBytesPerSec', 'bytesPerSec', 'float'],
  ['host', 'diskWriteBytesPerSec', 'bytesPerSec', 'float'],
  ['host', 'uptimeSeconds', 'seconds', 'float'],
  ['process', 'pid', 'id32', 'int'],
  ['process', 'usedMemoryMiB', 'mib', 'int'],
  ['process', 'uid', 'id32', 'int'],
  ['sample', 'seq', 'counter', 'int'],
  ['sample', 'ts', 'timestampMs', 'int'],
  ['agent', 'spoolBytes', 'bytes', 'float'],
  ['agent', 'droppedSamples', 'counter', 'float'],
];

function withValue(where: Where, key: string, value: unknown): unknown {
  switch (where) {
    case 'gpu':
      return { ...base, gpus: [{ ...gpu, [key]: value }] };
    case 'host':
      return { ...base, host: { ...host, [key]: value } };
    case 'process':
      return { ...base, processes: [{ ...proc, [key]: value }] };
    case 'sample':
      return { ...base, [key]: value };
    case 'agent':
      return { ...base, agent: { [key]: value } };
  }
}

const accepts = (where: Where, key: string, v: unknown) =>
  SampleSchema.safeParse(withValue(where, key, v)).success;

describe('bounds of every numeric sample field', () => {
  it.each(FIELDS)('%s.%s: %s range, %s', (where, key, bound, kind) => {
    const { min, max } = BOUNDS[bound];
    expect(accepts(where, key, min), `min ${min}`).toBe(true);
    expect(accepts(where, key, max), `max ${max}`).toBe(true);
    // just outside the range (a step that survives float rounding at this magnitude)
    const step = Math.max(1, Math.abs(max) * 1e-9);
    expect(accepts(where, key, min - step), `below ${min}`).toBe(false);
    expect(accepts(where, key, max + step), `above ${max}`).toBe(false);
    for (const junk of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300, '1', true]) {
      expect(accepts(where, key, junk), String(junk)).toBe(false);
    }
    const inside = min + 1.5;
    expect(accepts(where, key, inside), `fraction ${inside}`).toBe(kind === 'float');
  });

  it('nullable metrics accept null (unknown), never a made-up value', () => {
    for (const [where, key] of FIELDS) {
      if (where === 'sample' || key === 'pid') continue;
      expect(accepts(where, key, null), `${where}.${key}`).toBe(true);
    }
  });

  it('refuses the hostile values of the integrity report', () => {
    expect(accepts('gpu', 'utilizationGpuPercent', 1e300)).toBe(false);
    expect(accepts('gpu', 'memoryUsedMiB', 2 ** 63)).toBe(false);
    expect(accepts('gpu', 'powerDrawWatts', -1)).toBe(false);
    expect(accepts('gpu', 'utilizationGpuPercent', 87.5)).toBe(false);
    expect(accepts('gpu', 'temperatureCelsius', -41)).toBe(false);
    expect(accepts('gpu', 'temperatureCelsius', 151)).toBe(false);
    // ts in seconds, and in microseconds
    expect(accepts('sample', 'ts', 1_760_000_000)).toBe(false);
    expect(accepts('sample', 'ts', 1_760_000_000_000_000)).toBe(false);
  });

  it('says which field and why, and that fractions are not rounded', () => {
    const r = SampleSchema.safeParse(withValue('gpu', 'utilizationGpuPercent', 87.5));
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/integer/);
    expect(r.error?.issues[0]?.path).toEqual(['gpus', 0, 'utilizationGpuPercent']);
  });

  it('bounds MIG devices, per-core CPU, GPU events and the inventory too', () => {
    const mig = (v: number) => ({
      ...base,
      gpus: [
        {
          ...gpu,
          migDevices: [
            { index: 0, uuid: null, profile: null, gpuInstanceId: 1, computeInstanceId: 0, memoryUsedMiB: v },
          ],
        },
      ],
    });
    expect(SampleSchema.safeParse(mig(1024)).success).toBe(true);
    expect(SampleSchema.safeParse(mig(-1)).success).toBe(false);
    expect(SampleSchema.safeParse({ ...base, host: { ...host, cpuPerCorePercent: [0, 100] } }).success).toBe(
      true,
    );
    expect(SampleSchema.safeParse({ ...base, host: { ...host, cpuPerCorePercent: [101] } }).success).toBe(
      false,
    );
    const event = { kind: 'xid', gpuUuid: null, code: 79, message: 'fell off the bus', ts: base.ts };
    expect(SampleSchema.safeParse({ ...base, gpuEvents: [event] }).success).toBe(true);
    expect(SampleSchema.safeParse({ ...base, gpuEvents: [{ ...event, ts: 5 }] }).success).toBe(false);
    const inv = {
      agentVersion: '1',
      hostname: 'n',
      os: null,
      kernel: null,
      cpuModel: null,
      cpuCores: 96,
      memoryTotalBytes: 1e12,
      gpus: [],
    };
    expect(InventorySchema.safeParse(inv).success).toBe(true);
    expect(InventorySchema.safeParse({ ...inv, cpuCores: 1.5 }).success).toBe(false);
    expect(InventorySchema.safeParse({ ...inv, memoryTotalBytes: -1 }).success).toBe(false);
  });
});

describe('SamplesAckData', () => {
  it('is additive: an old ack (acked only) still parses; rejected lists seq, index, code, message', () => {
    expect(SamplesAckDataSchema.safeParse({ acked: [1], serverTime: 1 }).success).toBe(true);
    const withRejected = {
      acked: [1],
      rejected: [{ seq: 2, index: 1, code: 'VALIDATION', message: 'gpus.0.temperatureCelsius: Too big' }],
      serverTime: 1,
    };
    expect(SamplesAckDataSchema.parse(withRejected).rejected?.[0]?.seq).toBe(2);
  });
});
