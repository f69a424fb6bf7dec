/**
 * Plain-language efficiency hints for "My work": pure functions from the live GPUs of a
 * user / project / job to hint objects. Wording lives in i18n (`myWork.hints.<kind>`);
 * a hint carries its kind, a severity, and the named values (and a count for plural rules).
 */
import type { GpuView } from '@gpupulse/protocol';

export interface HintGpu {
  node: string;
  gpu: GpuView;
  /** The GPU's node is offline or stale: its figures are not current. */
  nodeDown?: boolean;
}

export type HintSeverity = 'warning' | 'info' | 'ok';

export type Hint =
  | {
      kind: 'idleHeld';
      severity: 'warning';
      count: number;
      params: { held: number; idle: number; minutes: number };
    }
  | {
      kind: 'lowMemory';
      severity: 'info';
      count: number;
      params: { job: string; percent: number; gpus: number };
    }
  | {
      kind: 'throttling';
      severity: 'warning';
      count: number;
      params: { node: string; index: number; reason: ThrottleCause };
    }
  | { kind: 'hot'; severity: 'warning'; count: number; params: { node: string; index: number; temp: number } }
  | {
      kind: 'eccErrors';
      severity: 'warning';
      count: number;
      params: { node: string; index: number; errors: number };
    }
  | { kind: 'unknown'; severity: 'info'; count: number; params: { gpus: number } }
  | { kind: 'allBusy'; severity: 'ok'; count: number; params: { gpus: number; percent: number } };

export type ThrottleCause = 'thermal' | 'power' | 'powerBrake' | 'hardware';

export interface HintOptions {
  now: number;
  /** A job using less GPU memory than this share of its GPUs' memory gets a hint. */
  lowMemoryPercent?: number;
  hotCelsius?: number;
  /** At most this many hints. */
  limit?: number;
}

const SEVERITY_ORDER: Record<HintSeverity, number> = { warning: 0, info: 1, ok: 2 };

/** Clock event reason names (as the agent decodes them) → the cause a person cares about. */
export function throttleCause(reasons: readonly string[] | undefined): ThrottleCause | null {
  if (!reasons || reasons.length === 0) return null;
  if (reasons.includes('hw_thermal_slowdown') || reasons.includes('sw_thermal_slowdown')) return 'thermal';
  if (reasons.includes('hw_power_brake_slowdown')) return 'powerBrake';
  if (reasons.includes('hw_slowdown')) return 'hardware';
  if (reasons.includes('sw_power_cap')) return 'power';
  return null;
}

function isHeld(g: GpuView): boolean {
  return (g.processCount ?? 0) > 0 || g.project !== null || (g.jobs?.length ?? 0) > 0;
}

export function computeHints(gpus: readonly HintGpu[], options: HintOptions): Hint[] {
  const lowMemoryPercent = options.lowMemoryPercent ?? 20;
  const hotCelsius = options.hotCelsius ?? 85;
  const hints: Hint[] = [];
  const live = gpus.filter((x) => !x.nodeDown && x.gpu.state === 'ok');

  // Held but idle: the server's `idleHeld` (its one rule: held below the threshold for the idle
  // window); `idleHeldSince` says since when. The shortest such stretch is the one we can vouch for.
  const held = live.filter((x) => isHeld(x.gpu));
  const idle = held.filter((x) => x.gpu.idleHeld === true);
  if (idle.length > 0) {
    const since = idle.map((x) => x.gpu.idleHeldSince).filter((v): v is number => typeof v === 'number');
    const minutes =
      since.length === idle.length ? Math.floor((options.now - Math.max(...since)) / 60_000) : 0;
    hints.push({
      kind: 'idleHeld',
      severity: 'warning',
      count: held.length,
      params: { held: held.length, idle: idle.length, minutes: Math.max(0, minutes) },
    });
  }

  // Jobs that use a small share of their GPUs' memory.
  const byJob = new Map<string, { used: number; total: number; gpus: number }>();
  for (const x of live) {
    for (const job of x.gpu.jobs ?? []) {
      if (x.gpu.memoryUsedMiB === null || x.gpu.memoryTotalMiB === null || x.gpu.memoryTotalMiB <= 0)
        continue;
      const share = (x.gpu.jobs?.length ?? 1) || 1;
      const e = byJob.get(job) ?? { used: 0, total: 0, gpus: 0 };
      e.used += x.gpu.memoryUsedMiB / share;
      e.total += x.gpu.memoryTotalMiB / share;
      e.gpus++;
      byJob.set(job, e);
    }
  }
  for (const [job, e] of [...byJob].sort(([a], [b]) => a.localeCompare(b))) {
    const percent = (100 * e.used) / e.total;
    if (percent < lowMemoryPercent)
      hints.push({
        kind: 'lowMemory',
        severity: 'info',
        count: e.gpus,
        params: { job, percent: Math.round(percent), gpus: e.gpus },
      });
  }

  for (const x of live) {
    const cause = throttleCause(x.gpu.clocksEventReasons);
    if (cause)
      hints.push({
        kind: 'throttling',
        severity: 'warning',
        count: 1,
        params: { node: x.node, index: x.gpu.index, reason: cause },
      });
    const temp = x.gpu.temperatureCelsius;
    if (temp !== null && temp >= hotCelsius)
      hints.push({
        kind: 'hot',
        severity: 'warning',
        count: 1,
        params: { node: x.node, index: x.gpu.index, temp },
      });
    const ecc = (x.gpu.eccErrorsUncorrectedVolatile ?? 0) + (x.gpu.remappedRowsFailure ? 1 : 0);
    if (ecc > 0)
      hints.push({
        kind: 'eccErrors',
        severity: 'warning',
        count: ecc,
        params: { node: x.node, index: x.gpu.index, errors: x.gpu.eccErrorsUncorrectedVolatile ?? 0 },
      });
  }

  const unknown = gpus.filter(
    (x) => x.nodeDown || x.gpu.state !== 'ok' || x.gpu.utilizationGpuPercent === null,
  );
  if (unknown.length > 0)
    hints.push({
      kind: 'unknown',
      severity: 'info',
      count: unknown.length,
      params: { gpus: unknown.length },
    });

  if (hints.length === 0 && live.length > 0) {
    const known = live.map((x) => x.gpu.utilizationGpuPercent).filter((v): v is number => v !== null);
    const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 0;
    hints.push({
      kind: 'allBusy',
      severity: 'ok',
      count: live.length,
      params: { gpus: live.length, percent: Math.round(mean) },
    });
  }

  return hints
    .map((h, i) => [h, i] as const)
    .sort(([a, i], [b, j]) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || i - j)
    .map(([h]) => h)
    .slice(0, options.limit ?? 12);
}
