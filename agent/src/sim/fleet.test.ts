import { SampleSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { createSimFleet, SIM_USERS } from './fleet.ts';

describe('simulated fleet', () => {
  const opts = {
    nodes: 40,
    gpusPerNode: 8,
    prefix: 'sim',
    intervalMs: 1000,
    seed: 42,
    now: 1_800_000_000_000,
  };

  it('valid samples, node names NAME-0001…, mixed models, busy and idle GPUs, project facts', () => {
    const fleet = createSimFleet(opts);
    expect(fleet.nodeNames[0]).toBe('sim-0001');
    expect(fleet.nodeNames[39]).toBe('sim-0040');
    const models = new Set<string>();
    let idle = 0;
    let total = 0;
    const accounts = new Set<string>();
    let users = 0;
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < opts.nodes; i++) {
        const s = SampleSchema.parse(fleet.tick(i, opts.now + t * 1000));
        expect(s.seq).toBe(t);
        for (const g of s.gpus) {
          models.add(g.name);
          total++;
          if ((g.utilizationGpuPercent ?? 0) < 1 && g.memoryUsedMiB === 0) idle++;
        }
        for (const p of s.processes ?? []) {
          if (p.slurmAccount) accounts.add(p.slurmAccount);
          if (p.k8sNamespace) accounts.add(`k8s:${p.k8sNamespace}`);
          if (SIM_USERS.includes(p.user as (typeof SIM_USERS)[number])) users++;
        }
      }
    }
    expect(models.size).toBe(3);
    expect(idle / total).toBeGreaterThan(0.1);
    expect(idle / total).toBeLessThan(0.45);
    expect(accounts.has('fu_video')).toBe(true);
    expect(users).toBeGreaterThan(0);
    expect(fleet.inventory(0).gpus).toHaveLength(8);
  });

  it('deterministic with a seed', () => {
    const a = createSimFleet(opts);
    const b = createSimFleet(opts);
    const sa = JSON.stringify(a.tick(3, opts.now));
    const sb = JSON.stringify(b.tick(3, opts.now));
    expect(sa).toBe(sb);
  });

  it('jobs start and stop over simulated time; power follows utilization', () => {
    const fleet = createSimFleet({ ...opts, nodes: 4 });
    const before = JSON.stringify(fleet.tick(0, opts.now).processes?.map((p) => p.pid));
    let s = fleet.tick(0, opts.now);
    for (let t = 1; t <= 3 * 3600; t += 10) s = fleet.tick(0, opts.now + t * 1000);
    expect(JSON.stringify(s.processes?.map((p) => p.pid))).not.toBe(before);
    for (const g of s.gpus) {
      if ((g.utilizationGpuPercent ?? 0) > 80)
        expect(g.powerDrawWatts ?? 0).toBeGreaterThan((g.powerLimitWatts ?? 0) * 0.6);
    }
  });

  it('1,000 nodes × 8 GPUs: one round of ticks is cheap', () => {
    const fleet = createSimFleet({ ...opts, nodes: 1000 });
    const t0 = performance.now();
    for (let r = 0; r < 3; r++) for (let i = 0; i < 1000; i++) fleet.tick(i, opts.now + r * 1000);
    const perRound = (performance.now() - t0) / 3;
    // A generous bound for slow CI; typically a few ms per round of 1,000 nodes.
    expect(perRound).toBeLessThan(500);
  });
});
