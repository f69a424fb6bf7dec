import { describe, expect, it } from 'vitest';
import { describeZodError, fail, ok } from './ack.ts';
import { applyNodePatch } from './fleet.ts';
import { AgentAuthSchema, LIMITS, SampleSchema, SamplesReportSchema } from './schemas.ts';

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

const sample = { seq: 1, ts: 1_760_000_000_000, gpuCollector: 'ok', gpus: [gpu], host: null };

describe('SampleSchema', () => {
  it('accepts a sample and defaults the GPU state to ok', () => {
    const parsed = SampleSchema.parse(sample);
    expect(parsed.gpus[0]?.state).toBe('ok');
    expect(parsed.gpus[0]?.fanSpeedPercent).toBeNull();
  });

  it('rejects NaN, Infinity and strings where numbers belong', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, '42']) {
      const r = SampleSchema.safeParse({ ...sample, gpus: [{ ...gpu, temperatureCelsius: bad }] });
      expect(r.success).toBe(false);
    }
  });

  it('rejects oversized names and too many GPUs', () => {
    const longName = 'x'.repeat(LIMITS.maxNameLength + 1);
    expect(SampleSchema.safeParse({ ...sample, gpus: [{ ...gpu, name: longName }] }).success).toBe(false);
    const many = Array.from({ length: LIMITS.maxGpusPerSample + 1 }, (_, i) => ({ ...gpu, index: i }));
    expect(SampleSchema.safeParse({ ...sample, gpus: many }).success).toBe(false);
  });

  it('a report needs at least one sample', () => {
    expect(SamplesReportSchema.safeParse({ samples: [] }).success).toBe(false);
    expect(SamplesReportSchema.safeParse({ samples: [sample] }).success).toBe(true);
  });
});

describe('AgentAuthSchema', () => {
  it('refuses node names with control characters', () => {
    const r = AgentAuthSchema.safeParse({ token: 't', node: 'evil\nnode', protocolVersion: 1 });
    expect(r.success).toBe(false);
  });
  it('keeps hostile but printable names as data', () => {
    const node = `<img src=x onerror=alert(1)> "q" 노드`;
    expect(AgentAuthSchema.parse({ token: 't', node, protocolVersion: 1 }).node).toBe(node);
  });
});

describe('ack envelope', () => {
  it('builds both shapes', () => {
    expect(ok(3)).toEqual({ ok: true, data: 3 });
    expect(fail('VALIDATION', 'bad')).toEqual({ ok: false, error: { code: 'VALIDATION', message: 'bad' } });
  });
  it('describes zod errors with paths, capped', () => {
    const r = SampleSchema.safeParse({ seq: -1, ts: 'x', gpus: 'no' });
    expect(r.success).toBe(false);
    if (!r.success) {
      const msg = describeZodError(r.error, 2);
      expect(msg).toMatch(/^seq: /);
      expect(msg).toMatch(/more$/);
    }
  });
});

describe('applyNodePatch', () => {
  it('patches top-level keys and GPUs by index, leaving the old objects alone', () => {
    const g0 = { ...gpu, state: 'ok' as const, index: 0, project: null };
    const g1 = { ...gpu, state: 'ok' as const, index: 1, uuid: 'GPU-1', project: null };
    const prev = {
      node: 'n',
      status: 'online' as const,
      connected: true,
      lastSeen: 1,
      lastSampleTs: 1,
      gpuCollector: 'ok' as const,
      gpuError: null,
      host: null,
      gpus: [g0, g1],
    };
    const next = applyNodePatch(prev, {
      node: 'n',
      status: 'stale',
      gpus: [
        { index: 1, utilizationGpuPercent: 7 },
        { index: 9, utilizationGpuPercent: 1 },
      ],
    });
    expect(next.status).toBe('stale');
    expect(next.gpus[1]?.utilizationGpuPercent).toBe(7);
    expect(next.gpus[0]).toBe(g0);
    expect(prev.status).toBe('online');
    expect(prev.gpus[1]).toBe(g1);
    expect(next.gpus).toHaveLength(2);
  });
});
