// The runner owns policy: interval, per-collector timeout, duration/error counters. One failing
// (or hanging) collector never stops the others.
import type { AgentStats, Sample } from '@gpupulse/protocol';
import type { Collector, SampleParts } from './collectors/types.ts';
import type { Logger } from './logger.ts';

export interface RunnerOptions {
  collectors: readonly Collector[];
  intervalMs: number;
  logger: Logger;
  /** Per-collector timeout of one collect(). Default: 80 % of the interval, at most 5 s. */
  timeoutMs?: number;
  /** Receives every sample. */
  onSample?: (sample: Sample) => void;
  /** Extra agent stats merged into each sample (queue size, drops). */
  stats?: () => Partial<AgentStats>;
  /** First sequence number (a disk spool continues where it stopped). */
  firstSeq?: number;
  /**
   * The first tick waits for every collector's `ready` (the first nvidia-smi round) up to this
   * long, so the first samples do not show a node with zero GPUs. Default max(2 × interval, 5 s).
   */
  firstRoundTimeoutMs?: number;
  now?: () => number;
}

interface CollectorState {
  collector: Collector;
  inFlight: Promise<SampleParts> | null;
  failing: boolean;
}

class TimeoutError extends Error {}

export class Runner {
  private seq: number;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private startedAt = 0;
  private ticks = 0;
  private lastTs = Number.NEGATIVE_INFINITY;
  private readonly states: CollectorState[];
  private readonly durations: Record<string, number> = {};
  private readonly errors: Record<string, number> = {};
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: RunnerOptions) {
    this.seq = opts.firstSeq ?? 0;
    this.timeoutMs = opts.timeoutMs ?? Math.max(50, Math.min(5_000, Math.floor(opts.intervalMs * 0.8)));
    this.now = opts.now ?? Date.now;
    this.states = opts.collectors.map((collector) => ({ collector, inFlight: null, failing: false }));
    for (const c of opts.collectors) this.errors[c.name] = 0;
  }

  /** Starts collectors (in the background) and the interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const started = this.startCollectors();
    const wait = this.opts.firstRoundTimeoutMs ?? Math.max(2 * this.opts.intervalMs, 5_000);
    void started
      .then(() =>
        Promise.race([
          Promise.all(this.states.map((s) => s.collector.ready?.(wait))),
          new Promise<void>((r) => setTimeout(r, wait).unref()),
        ]),
      )
      .catch(() => undefined)
      .then(() => {
        if (!this.running) return;
        // Ticks fall on wall-clock interval boundaries (every whole second at 1 Hz), like every
        // other agent's: samples line up across nodes and the server's deltas are phased to them.
        this.startedAt = Math.floor(this.now() / this.opts.intervalMs) * this.opts.intervalMs;
        this.ticks = 0;
        this.schedule();
      });
  }

  private startCollectors(): Promise<unknown> {
    return Promise.all(
      this.states.map(async (s) => {
        try {
          await s.collector.start?.();
        } catch (err) {
          this.opts.logger.warn(
            { collector: s.collector.name, err: (err as Error).message },
            'collector start failed',
          );
        }
      }),
    );
  }

  private schedule(): void {
    if (!this.running) return;
    this.ticks++;
    // Due times are computed from the aligned start, so the interval does not drift with collection time.
    const due = this.startedAt + this.ticks * this.opts.intervalMs;
    this.timer = setTimeout(
      () => {
        void this.tick().finally(() => this.schedule());
      },
      Math.max(0, due - this.now()),
    );
  }

  private async tick(): Promise<void> {
    try {
      const sample = await this.collect();
      this.opts.onSample?.(sample);
    } catch (err) {
      this.opts.logger.error({ err }, 'sample failed');
    }
  }

  /** Starts the collectors, waits for them to be ready (first GPU round), returns one sample. */
  async collectOnce(readyTimeoutMs = 10_000): Promise<Sample> {
    await this.startCollectors();
    await Promise.all(this.states.map((s) => s.collector.ready?.(readyTimeoutMs)));
    return this.collect();
  }

  /** One sample from every collector, now. */
  async collect(): Promise<Sample> {
    // Never the same ts twice (ticks catching up after a stall, or a starved simulator, can fall
    // in one millisecond, and InfluxDB keeps one point per series and time).
    const ts = Math.max(Math.round(this.now()), this.lastTs + 1);
    this.lastTs = ts;
    const parts = await Promise.all(this.states.map((s) => this.runOne(s)));
    const sample: Sample = {
      seq: this.seq++,
      ts,
      gpuCollector: 'absent',
      gpus: [],
      host: null,
    };
    const hasGpuCollector = parts.some((p) => p.gpuCollector !== undefined);
    for (const p of parts) Object.assign(sample, p);
    if (!hasGpuCollector) sample.gpuCollector = 'absent';
    sample.agent = {
      collectorDurationsMs: { ...this.durations },
      collectorErrors: { ...this.errors },
      spoolBytes: null,
      spoolSamples: null,
      droppedSamples: 0,
      ...this.opts.stats?.(),
    };
    return sample;
  }

  private async runOne(s: CollectorState): Promise<SampleParts> {
    const name = s.collector.name;
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (s.inFlight) throw new Error('previous collection still running');
      const p = s.collector.collect();
      s.inFlight = p;
      void p.then(
        () => {
          if (s.inFlight === p) s.inFlight = null;
        },
        () => {
          if (s.inFlight === p) s.inFlight = null;
        },
      );
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`timed out after ${this.timeoutMs} ms`)),
          this.timeoutMs,
        );
      });
      const parts = await Promise.race([p, timeout]);
      if (s.failing) {
        s.failing = false;
        this.opts.logger.info({ collector: name }, 'collector recovered');
      }
      return parts;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.errors[name] = (this.errors[name] ?? 0) + 1;
      if (!s.failing) {
        s.failing = true;
        this.opts.logger.warn({ collector: name, err: e.message }, 'collector failed');
      } else {
        this.opts.logger.debug({ collector: name, err: e.message }, 'collector still failing');
      }
      return s.collector.fallback?.(e) ?? {};
    } finally {
      clearTimeout(timer);
      this.durations[name] = Math.round((performance.now() - t0) * 100) / 100;
    }
  }

  /** A new connection: every collector reports its complete state in the next sample. */
  resync(): void {
    for (const s of this.states) s.collector.resync?.();
  }

  get nextSeq(): number {
    return this.seq;
  }

  /** Stops the interval and every collector (child processes included). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all(this.states.map((s) => s.collector.stop?.().catch(() => undefined)));
  }
}
