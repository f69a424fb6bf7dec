import type { Alert, GpuView, NodeView } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { buildAlertsConfig } from '../src/alerts/config.ts';
import { AlertEngine } from '../src/alerts/engine.ts';
import { ManualClock } from '../src/clock.ts';
import { FleetState } from '../src/fleet/fleet-state.ts';
import { gpu, sample } from './helpers.ts';

const T0 = 1_750_000_000_000;

function gpuView(index: number, over: Partial<GpuView> = {}): GpuView {
  return { ...gpu(index), project: null, ...over };
}

function nodeView(node: string, gpus: GpuView[], over: Partial<NodeView> = {}): NodeView {
  return {
    node,
    status: 'online',
    connected: true,
    lastSeen: T0,
    lastSampleTs: T0,
    gpuCollector: 'ok',
    gpuError: null,
    host: null,
    gpus,
    ...over,
  };
}

function setup(file: unknown = {}) {
  const clock = new ManualClock(T0);
  const config = buildAlertsConfig(file);
  const engine = new AlertEngine({ rules: config.rules, clock, maxResolved: config.maxResolved });
  /** Evaluates once per second for `seconds` with the same view; returns every change. */
  const run = (seconds: number, view: () => NodeView[]): Alert[] => {
    const out: Alert[] = [];
    for (let i = 0; i < seconds; i++) {
      out.push(...engine.evaluate(view()));
      clock.advance(1000);
    }
    return out;
  };
  return { clock, engine, run };
}

const firing = (changes: Alert[], rule: string) =>
  changes.filter((a) => a.rule === rule && a.state === 'firing');
const resolved = (changes: Alert[], rule: string) =>
  changes.filter((a) => a.rule === rule && a.state === 'resolved');

describe('alert engine: default rules with a fake clock', () => {
  it('gpu_temperature_high: fires after 60 s at ≥ 85 °C, not on a short spike; hysteresis on resolve', async () => {
    const { engine, run, clock } = setup();
    const hot = (t: number) => () => [nodeView('n1', [gpuView(0, { temperatureCelsius: t }), gpuView(1)])];
    // A 30 s spike does not fire.
    expect(firing(run(30, hot(90)), 'gpu_temperature_high')).toHaveLength(0);
    expect(run(5, hot(60))).toHaveLength(0);
    // 60 s above the threshold fires once (dedup: one alert, not one per tick).
    const started = clock.now();
    const changes = run(90, hot(87));
    const fired = firing(changes, 'gpu_temperature_high');
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({
      severity: 'critical',
      node: 'n1',
      gpuIndex: 0,
      gpuUuid: gpu(0).uuid,
      value: 87,
      threshold: 85,
      startedAt: started,
      endedAt: null,
    });
    expect(fired[0]!.message).toContain('87 °C');
    expect(engine.list({ state: 'firing' }).alerts).toHaveLength(1);
    expect(engine.firingByRule().gpu_temperature_high).toBe(1);
    // 83 °C is within the 3 °C hysteresis: still firing.
    expect(run(60, hot(83))).toHaveLength(0);
    // 80 °C for the 30 s clear window: resolved.
    const end = run(40, hot(80));
    expect(resolved(end, 'gpu_temperature_high')).toHaveLength(1);
    expect(resolved(end, 'gpu_temperature_high')[0]!.endedAt).toBeGreaterThan(started);
    // The resolved alert keeps its peak apart from the last reading (83 °C, inside the hysteresis).
    expect(resolved(end, 'gpu_temperature_high')[0]).toMatchObject({ peak: 87, value: 83, threshold: 85 });
    expect(engine.list({ state: 'firing' }).alerts).toHaveLength(0);
    expect(engine.list({ state: 'resolved' }).alerts).toHaveLength(1);
    // A new occurrence is a new alert (new id).
    const again = firing(run(61, hot(95)), 'gpu_temperature_high');
    expect(again).toHaveLength(1);
    expect(again[0]!.id).not.toBe(fired[0]!.id);
  });

  it('memory_temperature_high: fires at ≥ 95 °C at once; unknown value keeps it firing', () => {
    const { run } = setup();
    const v = (t: number | null) => () => [nodeView('n1', [gpuView(0, { memoryTemperatureCelsius: t })])];
    expect(firing(run(1, v(96)), 'memory_temperature_high')).toHaveLength(1);
    expect(run(10, v(null))).toHaveLength(0);
    expect(resolved(run(31, v(80)), 'memory_temperature_high')).toHaveLength(1);
  });

  it('gpu_throttled: thermal / power-brake reasons for 30 s; sw_power_cap alone does not count', () => {
    const { run } = setup();
    const v = (reasons: string[]) => () => [nodeView('n1', [gpuView(0, { clocksEventReasons: reasons })])];
    expect(run(60, v(['sw_power_cap']))).toHaveLength(0);
    expect(firing(run(29, v(['hw_thermal_slowdown'])), 'gpu_throttled')).toHaveLength(0);
    const c = run(5, v(['sw_power_cap', 'hw_power_brake_slowdown']));
    expect(firing(c, 'gpu_throttled')).toHaveLength(1);
    expect(firing(c, 'gpu_throttled')[0]!.message).toContain('hw_power_brake_slowdown');
    expect(resolved(run(31, v([])), 'gpu_throttled')).toHaveLength(1);
  });

  it('ecc_uncorrectable: volatile > 0 fires; an aggregate increase fires and holds for 1 h', () => {
    const { run } = setup();
    const v = (vol: number, agg: number) => () => [
      nodeView('n1', [gpuView(0, { eccErrorsUncorrectedVolatile: vol, eccErrorsUncorrectedAggregate: agg })]),
    ];
    // A lifetime count already there is the baseline, not an alert.
    expect(run(5, v(0, 7))).toHaveLength(0);
    const up = run(1, v(0, 9));
    expect(firing(up, 'ecc_uncorrectable')).toHaveLength(1);
    expect(firing(up, 'ecc_uncorrectable')[0]!.value).toBe(2);
    expect(run(3500, v(0, 9))).toHaveLength(0);
    expect(resolved(run(200, v(0, 9)), 'ecc_uncorrectable')).toHaveLength(1);
    const vol = run(1, v(1, 9));
    expect(firing(vol, 'ecc_uncorrectable')[0]!.message).toContain('1 uncorrectable');
  });

  it('remapped_rows: failure or pending fires, clears when both are false', () => {
    const { run } = setup();
    const v = (failure: boolean, pending: boolean) => () => [
      nodeView('n1', [gpuView(0, { remappedRowsFailure: failure, remappedRowsPending: pending })]),
    ];
    expect(run(3, v(false, false))).toHaveLength(0);
    expect(firing(run(1, v(false, true)), 'remapped_rows')[0]!.message).toContain('pending');
    expect(run(5, v(true, false))).toHaveLength(0); // same alert (dedup), message updated
    expect(resolved(run(1, v(false, false)), 'remapped_rows')).toHaveLength(1);
  });

  it('xid_error: events fire per GPU (matched by uuid or PCI bus id), dedup, resolve after the hold', () => {
    const { run, engine } = setup();
    const g0 = gpuView(0, { pciBusId: '00000000:3B:00.0' });
    const view = () => [nodeView('n1', [g0, gpuView(1)])];
    engine.recordEvents(
      'n1',
      [
        {
          kind: 'xid',
          gpuUuid: null,
          pciBusId: '0000:3b:00.0',
          code: 79,
          message: 'GPU has fallen off the bus',
          ts: T0,
        },
      ],
      [g0],
    );
    const c = run(1, view);
    expect(firing(c, 'xid_error')).toHaveLength(1);
    expect(firing(c, 'xid_error')[0]).toMatchObject({ gpuUuid: g0.uuid, gpuIndex: 0, value: 79 });
    // Another event on the same GPU: same alert.
    engine.recordEvents('n1', [{ kind: 'xid', gpuUuid: g0.uuid, code: 79, message: 'again', ts: T0 }]);
    expect(run(300, view)).toHaveLength(0);
    expect(engine.list({ state: 'firing' }).alerts[0]!.message).toContain('2 events');
    // 10 min after the last event: resolved.
    expect(resolved(run(301, view), 'xid_error')).toHaveLength(1);
  });

  it('gpu_stale: a stale GPU after 10 s; a stale collector is one node-level alert', () => {
    const { run } = setup();
    const g = (state: 'ok' | 'stale') => () => [nodeView('n1', [gpuView(0, { state }), gpuView(1)])];
    expect(firing(run(9, g('stale')), 'gpu_stale')).toHaveLength(0);
    expect(firing(run(2, g('stale')), 'gpu_stale')[0]).toMatchObject({ gpuIndex: 0 });
    expect(resolved(run(1, g('ok')), 'gpu_stale')).toHaveLength(1);
    const coll = () => [
      nodeView('n1', [gpuView(0), gpuView(1)], { gpuCollector: 'stale', gpuError: 'timeout' }),
    ];
    const c = firing(run(11, coll), 'gpu_stale');
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ gpuUuid: null, gpuIndex: null });
    expect(c[0]!.message).toContain('timeout');
  });

  it('node_offline: from the real fleet state (disconnect → offline → reconnect); GPU alerts freeze meanwhile', () => {
    const { run, clock } = setup();
    const fleet = new FleetState({ clock });
    fleet.connect('n1', 'c1', 1000);
    fleet.ingest('n1', [sample(1, clock.now(), { gpus: [gpu(0, { memoryTemperatureCelsius: 99 })] })]);
    const view = () => {
      fleet.sweep();
      return fleet.snapshot();
    };
    expect(firing(run(1, view), 'memory_temperature_high')).toHaveLength(1);
    fleet.disconnect('n1', 'c1');
    const off = run(5, view);
    expect(firing(off, 'node_offline')).toHaveLength(1);
    expect(off.filter((a) => a.state === 'resolved')).toHaveLength(0); // the GPU alert is kept
    fleet.connect('n1', 'c2', 1000);
    fleet.ingest('n1', [sample(2, clock.now(), { gpus: [gpu(0, { memoryTemperatureCelsius: 99 })] })]);
    expect(resolved(run(1, view), 'node_offline')).toHaveLength(1);
  });

  it('gpu_idle_held: from GpuView.idleHeldSince, ≥ 1 h; carries the project', () => {
    const { run, clock } = setup();
    const since = clock.now();
    const v = (s: number | null) => () => [
      nodeView('n1', [gpuView(0, { idleHeldSince: s, idleHeld: s !== null, project: 'vision-lab' })]),
    ];
    expect(run(3599, v(since))).toHaveLength(0);
    const c = firing(run(2, v(since)), 'gpu_idle_held');
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ project: 'vision-lab', severity: 'info', threshold: 3600 });
    expect(c[0]!.message).toContain('vision-lab');
    expect(resolved(run(1, v(null)), 'gpu_idle_held')).toHaveLength(1);
  });

  it('dedup per (rule, node, gpu); a vanished GPU resolves; list filters and bounds resolved', () => {
    const { run, engine } = setup({ maxResolved: 2 });
    const hot = { memoryTemperatureCelsius: 99 };
    const both = () => [nodeView('a', [gpuView(0, hot), gpuView(1, hot)]), nodeView('b', [gpuView(0, hot)])];
    const c = run(5, both);
    expect(firing(c, 'memory_temperature_high')).toHaveLength(3);
    expect(new Set(c.map((a) => a.id)).size).toBe(3);
    expect(engine.list({ node: 'a' }).alerts).toHaveLength(2);
    expect(engine.list({ rule: 'gpu_stale' }).alerts).toHaveLength(0);
    // GPU 1 of node a disappears from the samples: its alert resolves.
    const gone = run(1, () => [nodeView('a', [gpuView(0, hot)]), nodeView('b', [gpuView(0, hot)])]);
    expect(resolved(gone, 'memory_temperature_high')).toHaveLength(1);
    // Node b forgotten: resolved; the resolved list keeps the newest 2.
    run(1, () => [nodeView('a', [gpuView(0, hot)])]);
    run(1, () => []);
    expect(engine.list({ state: 'resolved' }).alerts).toHaveLength(2);
    expect(engine.list({ state: 'firing' }).alerts).toHaveLength(0);
  });

  it('rules from the file: disable, override, add', () => {
    const { run, engine } = setup({
      rules: [
        { id: 'gpu_temperature_high', threshold: 70, for: '5s' },
        { id: 'node_offline', enabled: false },
        { id: 'gpu_warm', kind: 'gpu_temperature', threshold: 60, severity: 'info' },
      ],
    });
    expect(engine.ruleIds).not.toContain('node_offline');
    const c = run(10, () => [nodeView('n1', [gpuView(0, { temperatureCelsius: 72 })], { status: 'online' })]);
    expect(firing(c, 'gpu_temperature_high')).toHaveLength(1);
    expect(firing(c, 'gpu_warm')[0]).toMatchObject({ severity: 'info', threshold: 60 });
    expect(run(3, () => [nodeView('n1', [], { status: 'offline', connected: false })])).toHaveLength(0);
  });
});

describe('alert engine: only what changed is judged', () => {
  /** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
  function rng(seed: number) {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('gives the same alerts as judging every GPU: views reused while unchanged vs fresh copies each tick', () => {
    for (const seed of [1, 2]) {
      const random = rng(seed);
      const clock = new ManualClock(T0);
      const file = {
        rules: [
          { id: 'gpu_temperature_high', for: '5s', clearFor: '5s' },
          { id: 'gpu_idle_held', threshold: 20 },
          { id: 'ecc_uncorrectable', hold: '30s' },
        ],
      };
      const config = buildAlertsConfig(file);
      const reused = new AlertEngine({ rules: config.rules, clock, maxResolved: 1000 });
      const fresh = new AlertEngine({ rules: config.rules, clock, maxResolved: 1000 });
      // 20 nodes × 4 GPUs; each tick a few nodes change one input (a changed node gets a new view,
      // as FleetState does), the others keep their view object.
      const views = new Map<string, NodeView>();
      for (let n = 0; n < 20; n++) {
        const gpus = [0, 1, 2, 3].map((i) => gpuView(i, { temperatureCelsius: 50 }));
        views.set(`n${n}`, nodeView(`n${n}`, gpus));
      }
      const a: Alert[] = [];
      const b: Alert[] = [];
      for (let tick = 0; tick < 200; tick++) {
        for (const [name, v] of views) {
          if (random() > 0.15) continue;
          const i = Math.floor(random() * 4);
          const g = v.gpus[i]!;
          const r = random();
          const changedGpu: GpuView =
            r < 0.5
              ? { ...g, temperatureCelsius: 70 + Math.floor(random() * 25) }
              : r < 0.65
                ? {
                    ...g,
                    eccErrorsUncorrectedAggregate:
                      (g.eccErrorsUncorrectedAggregate ?? 0) + (random() < 0.5 ? 1 : 0),
                  }
                : r < 0.8
                  ? { ...g, idleHeldSince: g.idleHeldSince == null ? clock.now() : null }
                  : r < 0.9
                    ? { ...g, remappedRowsPending: !g.remappedRowsPending }
                    : { ...g, utilizationGpuPercent: Math.floor(random() * 100) };
          const status = random() < 0.03 ? (v.status === 'online' ? 'offline' : 'online') : v.status;
          views.set(name, { ...v, status, gpus: v.gpus.map((x, j) => (j === i ? changedGpu : x)) });
        }
        const list = [...views.values()];
        a.push(...reused.evaluate(list));
        b.push(...fresh.evaluate(structuredClone(list)));
        clock.advance(1000);
      }
      expect(a.length).toBeGreaterThan(10);
      expect(a).toEqual(b);
      expect(reused.list()).toEqual(fresh.list());
    }
  });

  it('an unchanged view still fires gpu_idle_held when its time comes (the clock is an input)', () => {
    const { engine, run } = setup({ rules: [{ id: 'gpu_idle_held', threshold: 30 }] });
    const view = [nodeView('n1', [gpuView(0, { idleHeldSince: T0, idleHeld: true, project: 'p' })])];
    const changes = run(40, () => view);
    expect(firing(changes, 'gpu_idle_held')).toHaveLength(1);
    expect(engine.list({ state: 'firing' }).alerts[0]).toMatchObject({ rule: 'gpu_idle_held', node: 'n1' });
  });
});
