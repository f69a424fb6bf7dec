import { GPU_METRICS, type GpuMetricDef } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { en } from './en.ts';
import { ko } from './ko.ts';

const lookup = (messages: object, key: string): unknown =>
  key.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], messages);

describe('metric labels come from the protocol registry', () => {
  const registry: readonly GpuMetricDef[] = GPU_METRICS;
  it.each(registry.map((m) => [m.key, m.label] as const))('%s: %s is a label in en and ko', (_key, label) => {
    expect(lookup(en, label)).toEqual(expect.any(String));
    expect(lookup(ko, label)).toEqual(expect.any(String));
    expect(lookup(ko, label)).not.toBe('');
  });

  it('en and ko label nothing that is not in the registry', () => {
    const keys = registry.map((m) => m.key).sort();
    expect(Object.keys(en.metrics).sort()).toEqual(keys);
    expect(Object.keys(ko.metrics).sort()).toEqual(keys);
  });
});
