// I/O side of the nvidia-smi collector: one long-lived `--query-gpu … -lms` child, a watchdog
// that restarts it with backoff, and one-shot `--query-compute-apps` calls.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import type { GpuCollectorState, GpuMetrics, GpuProcess, MigDevice } from '@gpupulse/protocol';
import { LIMITS, ProcessDeltaEncoder } from '@gpupulse/protocol';
import { backoffDelay } from '../../backoff.ts';
import type { Logger } from '../../logger.ts';
import type { Collector, SampleParts } from '../types.ts';
import { normalizePciBusId } from '../xid/parse.ts';
import {
  COMPUTE_APP_FIELDS,
  migDevicesByGpu,
  type NvidiaSmiVersion,
  parseComputeApps,
  parseGpuRow,
  parseHelpQuery,
  parseListGpus,
  parseMigProcesses,
  parseMigTable,
  parseVersion,
  planGpuQuery,
  RoundAssembler,
} from './parse.ts';
import { ProcReader } from './procfs.ts';

export interface NvidiaSmiOptions {
  /** Path or command name of nvidia-smi. */
  nvidiaSmi: string;
  intervalMs: number;
  logger: Logger;
  /** Timeout of one-shot calls (--help-query-gpu, --version, --query-compute-apps). */
  commandTimeoutMs?: number;
  /** A round older than this makes the GPUs `stale`. Default max(3 × interval, 3 s). */
  staleAfterMs?: number;
  /** No output for this long: the child is killed and restarted. Default max(5 × interval, 10 s). */
  hangTimeoutMs?: number;
  /** Restart backoff. */
  restartInitialMs?: number;
  restartMaxMs?: number;
  /** Quiet time after the last row that ends a round. Default min(100 ms, interval / 4). */
  quietMs?: number;
  /** Environment for the child (tests). */
  env?: NodeJS.ProcessEnv;
  /** MIG devices (`-L` + the default table) are refreshed this often while a GPU is in MIG mode. Default 60 s. */
  migRefreshMs?: number;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

class CommandError extends Error {
  constructor(
    message: string,
    readonly code: string | number | null,
  ) {
    super(message);
  }
}

/** Runs a command without blocking the event loop, with a hard timeout (SIGKILL). */
export function runCommand(
  file: string,
  args: readonly string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
        env: env ?? process.env,
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number | null };
        if (e.code === 'ENOENT') return reject(new CommandError(`${file}: not found`, 'ENOENT'));
        if (e.killed)
          return reject(
            new CommandError(`${file} ${args[0] ?? ''}: timed out after ${timeoutMs} ms`, 'TIMEOUT'),
          );
        const text = firstLines(`${stdout}\n${stderr}`) || e.message;
        reject(new CommandError(`${text} (exit ${e.code ?? 'signal'})`, e.code ?? null));
      },
    );
  });
}

function firstLines(text: string, max = 3): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, max)
    .join(' | ')
    .slice(0, LIMITS.maxTextLength);
}

type Status = 'starting' | 'ok' | 'absent' | 'error' | 'stale';

/**
 * Shared state of one nvidia-smi installation: field discovery, the loop child and the latest round.
 * Two collectors read it: GPUs (`createNvidiaSmiGpuCollector`) and processes.
 */
export class NvidiaSmi {
  readonly intervalMs: number;
  private readonly log: Logger;
  private readonly commandTimeoutMs: number;
  private readonly staleAfterMs: number;
  private readonly hangTimeoutMs: number;
  private readonly restartInitialMs: number;
  private readonly restartMaxMs: number;
  private readonly quietMs: number;

  private status: Status = 'starting';
  private errorText: string | null = null;
  private fields: string[] | null = null;
  private child: ChildProcess | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private lastOutputAt = 0;
  private stopped = false;
  private killedForHang = false;
  private round: GpuMetrics[] | null = null;
  private roundAt = 0;
  private readyWaiters: Array<() => void> = [];
  private starting: Promise<void> | null = null;
  version: NvidiaSmiVersion | null = null;
  private mig = new Map<number, MigDevice[]>();
  /** `gpuIndex:pid` → the MIG instance the process runs in (the default table, refreshed with the devices). */
  private migProcs = new Map<string, { gpuInstanceId: number; computeInstanceId: number }>();
  private migAt = 0;
  private migRefreshing = false;
  private readonly migRefreshMs: number;
  private pciToUuid = new Map<string, string>();
  /** Field discoveries since start (the first one included). */
  discoveries = 0;
  /** Restarts of the loop child since start (for tests and stats). */
  restarts = 0;
  /** Complete rounds received since start. */
  rounds = 0;
  /** Cells the protocol would refuse (fraction of an integer metric, out of bounds): read as unknown. */
  invalidCells = 0;
  private readonly invalidWarned = new Set<string>();
  private readonly onInvalidCell = (key: string, raw: string): void => {
    this.invalidCells++;
    if (this.invalidWarned.has(key)) return;
    this.invalidWarned.add(key);
    this.log.warn(
      { metric: key, value: raw.slice(0, 64) },
      'nvidia-smi value outside the protocol range: sent as unknown',
    );
  };

  constructor(private readonly opts: NvidiaSmiOptions) {
    this.intervalMs = opts.intervalMs;
    this.log = opts.logger;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.staleAfterMs = opts.staleAfterMs ?? Math.max(3 * opts.intervalMs, 3_000);
    this.hangTimeoutMs = opts.hangTimeoutMs ?? Math.max(5 * opts.intervalMs, 10_000);
    this.restartInitialMs = opts.restartInitialMs ?? 1_000;
    this.restartMaxMs = opts.restartMaxMs ?? 60_000;
    this.quietMs = opts.quietMs ?? Math.max(5, Math.min(100, Math.floor(opts.intervalMs / 4)));
    this.migRefreshMs = opts.migRefreshMs ?? 60_000;
  }

  get state(): Status {
    return this.status;
  }

  get available(): boolean {
    return this.status !== 'absent';
  }

  /** Discovers fields and starts the loop child. Safe to call twice. */
  start(): Promise<void> {
    this.starting ??= this.discoverAndSpawn();
    return this.starting;
  }

  /** Resolves at the first round, or when nvidia-smi turns out absent/failing, or after timeoutMs. */
  ready(timeoutMs: number): Promise<void> {
    if ((this.round && !this.migRefreshing) || this.status === 'absent' || this.status === 'error')
      return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const waiters = this.readyWaiters;
      function done() {
        clearTimeout(t);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  private wake(): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const f of w) f();
  }

  /**
   * Discovers the supported fields (`--help-query-gpu`) and the versions (`--version`), then starts
   * the loop child. Runs at start and before every restart, so a driver upgrade (nvidia-smi
   * restarted, version changed) gets a fresh field list.
   */
  private async discoverAndSpawn(): Promise<void> {
    if (this.stopped) return;
    try {
      const help = await runCommand(
        this.opts.nvidiaSmi,
        ['--help-query-gpu'],
        this.commandTimeoutMs,
        this.opts.env,
      );
      const supported = parseHelpQuery(help.stdout);
      if (supported.size === 0) throw new CommandError('nvidia-smi --help-query-gpu listed no fields', null);
      const fields = planGpuQuery(supported);
      if (this.fields && fields.join(',') !== this.fields.join(','))
        this.log.info({ fields: fields.length, before: this.fields.length }, 'nvidia-smi fields changed');
      this.fields = fields;
      this.discoveries++;
      this.log.debug({ fields: this.fields.length }, 'nvidia-smi fields discovered');
    } catch (err) {
      const e = err as CommandError;
      if (e.code === 'ENOENT') {
        this.status = 'absent';
        this.log.info({ nvidiaSmi: this.opts.nvidiaSmi }, 'nvidia-smi not found: reporting zero GPUs');
        this.wake();
        return;
      }
      this.fail(`nvidia-smi field discovery failed: ${e.message}`);
      this.scheduleRestart();
      return;
    }
    await this.readVersion();
    this.spawnLoop();
  }

  /** `--version` (old drivers: the default table's banner); not fatal when it fails. */
  private async readVersion(): Promise<void> {
    // `--version` and the default table's banner (old drivers have no --version), side by side so
    // that a hung driver costs one command timeout, not two.
    const run = (args: string[]) =>
      runCommand(this.opts.nvidiaSmi, args, this.commandTimeoutMs, this.opts.env).then(
        (r) => parseVersion(r.stdout),
        () => null,
      );
    const [fromVersion, fromTable] = await Promise.all([run(['--version']), run([])]);
    if (!fromVersion && !fromTable) return;
    const v: NvidiaSmiVersion = {
      nvidiaSmiVersion: fromVersion?.nvidiaSmiVersion ?? fromTable?.nvidiaSmiVersion ?? null,
      driverVersion: fromVersion?.driverVersion ?? fromTable?.driverVersion ?? null,
      cudaVersion: fromVersion?.cudaVersion ?? fromTable?.cudaVersion ?? null,
    };
    const before = this.version;
    if (
      before &&
      (before.driverVersion !== v.driverVersion || before.nvidiaSmiVersion !== v.nvidiaSmiVersion)
    )
      this.log.warn(
        { from: before.driverVersion, to: v.driverVersion },
        'NVIDIA driver changed; nvidia-smi fields re-discovered',
      );
    this.version = v;
  }

  /** MIG devices from `nvidia-smi -L` and the default table, in the background, at most every migRefreshMs. */
  private refreshMig(force = false): void {
    if (this.migRefreshing || this.stopped) return;
    if (!force && Date.now() - this.migAt < this.migRefreshMs) return;
    this.migRefreshing = true;
    this.migAt = Date.now();
    void Promise.all([
      runCommand(this.opts.nvidiaSmi, ['-L'], this.commandTimeoutMs, this.opts.env),
      runCommand(this.opts.nvidiaSmi, [], this.commandTimeoutMs, this.opts.env).catch(() => ({
        stdout: '',
        stderr: '',
      })),
    ])
      .then(([list, table]) => {
        const next = migDevicesByGpu(parseListGpus(list.stdout), parseMigTable(table.stdout));
        const count = [...next.values()].reduce((n, d) => n + d.length, 0);
        const before = [...this.mig.values()].reduce((n, d) => n + d.length, 0);
        if (count !== before) this.log.info({ migDevices: count }, 'MIG devices changed');
        this.mig = next;
        this.migProcs = new Map(
          parseMigProcesses(table.stdout).map((r) => [
            `${r.gpu}:${r.pid}`,
            { gpuInstanceId: r.gpuInstanceId, computeInstanceId: r.computeInstanceId },
          ]),
        );
      })
      .catch((err: Error) => this.log.debug({ err: err.message }, 'MIG refresh failed'))
      .finally(() => {
        this.migRefreshing = false;
        if (this.round) {
          for (const g of this.round)
            if (g.migModeCurrent === true) g.migDevices = this.mig.get(g.index) ?? [];
        }
        this.wake();
      });
  }

  /** Adds what the loop query does not carry (CUDA version, MIG devices) to one round, once. */
  private decorate(gpus: GpuMetrics[]): GpuMetrics[] {
    const cuda = this.version?.cudaVersion ?? null;
    const driver = this.version?.driverVersion ?? null;
    let anyMig = false;
    const pci = new Map<string, string>();
    for (const g of gpus) {
      g.cudaVersion = cuda;
      if (g.driverVersion === undefined || g.driverVersion === null) g.driverVersion = driver;
      if (g.migModeCurrent === true) {
        anyMig = true;
        g.migDevices = this.mig.get(g.index) ?? [];
      }
      const key = normalizePciBusId(g.pciBusId);
      if (key) pci.set(key, g.uuid);
    }
    this.pciToUuid = pci;
    if (anyMig) this.refreshMig(this.mig.size === 0 && this.migAt === 0);
    return gpus;
  }

  /** Normalized PCI bus id → GPU uuid of the latest round (XID events). */
  gpuByPci(): ReadonlyMap<string, string> {
    return this.pciToUuid;
  }

  private spawnLoop(): void {
    if (this.stopped || !this.fields) return;
    const fields = this.fields;
    const args = [
      `--query-gpu=${fields.join(',')}`,
      '--format=csv,noheader,nounits',
      '-lms',
      String(this.intervalMs),
    ];
    const child = spawn(this.opts.nvidiaSmi, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.opts.env ?? process.env,
      windowsHide: true,
    });
    this.child = child;
    this.killedForHang = false;
    this.lastOutputAt = Date.now();
    const assembler = new RoundAssembler<GpuMetrics>();
    const junk: string[] = [];
    let buf = '';

    const onRound = (gpus: GpuMetrics[]) => {
      const recovered = this.status !== 'ok' && this.status !== 'starting';
      this.round = this.decorate(gpus);
      this.roundAt = Date.now();
      this.rounds++;
      this.attempt = 0;
      if (recovered) this.log.info({ gpus: gpus.length }, 'nvidia-smi recovered');
      this.status = 'ok';
      this.errorText = null;
      if (!this.migRefreshing) this.wake();
    };
    const onLine = (line: string) => {
      if (line.trim() === '') return;
      const gpu = parseGpuRow(line, fields, undefined, this.onInvalidCell);
      if (!gpu) {
        junk.push(line.trim());
        if (junk.length > 5) junk.shift();
        return;
      }
      const done = assembler.push(gpu);
      if (done) onRound(done);
      if (this.quietTimer) clearTimeout(this.quietTimer);
      this.quietTimer = assembler.pending > 0 ? setTimeout(flushQuiet, this.quietMs) : null;
    };
    const flushQuiet = () => {
      this.quietTimer = null;
      if (this.child !== child) return;
      const done = assembler.flush();
      if (done) onRound(done);
    };

    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.lastOutputAt = Date.now();
      buf += chunk;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
      if (buf.length > 1 << 20) buf = ''; // a line longer than 1 MiB is not nvidia-smi output
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      for (const l of chunk.split('\n')) if (l.trim()) junk.push(l.trim());
      while (junk.length > 5) junk.shift();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // spawn failure (e.g. the binary was removed): 'exit' may not follow
      if (this.child !== child) return;
      this.child = null;
      this.fail(`nvidia-smi could not be started: ${err.code ?? err.message}`);
      this.scheduleRestart();
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      if (buf.trim()) onLine(buf);
      buf = '';
      if (this.stopped) return;
      if (this.killedForHang) {
        // status and message already set by the watchdog
      } else {
        const why = junk.length
          ? junk.join(' | ')
          : `exited with ${code !== null ? `code ${code}` : `signal ${signal}`}`;
        this.fail(`nvidia-smi: ${why}`.slice(0, LIMITS.maxTextLength));
      }
      this.scheduleRestart();
    });

    this.armWatchdog();
  }

  private armWatchdog(): void {
    if (this.watchdog) return;
    const every = Math.max(50, Math.min(1_000, Math.floor(this.hangTimeoutMs / 4)));
    this.watchdog = setInterval(() => {
      const child = this.child;
      if (!child || this.stopped) return;
      const silentFor = Date.now() - this.lastOutputAt;
      if (silentFor < this.hangTimeoutMs) return;
      this.killedForHang = true;
      const text = `nvidia-smi produced no output for ${Math.round(silentFor / 1000)} s; restarting it`;
      if (this.status !== 'stale') this.log.warn({ silentMs: silentFor }, 'nvidia-smi hung; restarting');
      this.status = 'stale';
      this.errorText = text;
      this.wake();
      child.kill('SIGKILL');
    }, every);
    this.watchdog.unref();
  }

  private fail(text: string): void {
    if (this.status !== 'error' || this.errorText !== text)
      this.log.warn({ error: text }, 'nvidia-smi failed');
    this.status = 'error';
    this.errorText = text;
    this.wake();
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer) return;
    const delay = backoffDelay(this.attempt++, this.restartInitialMs, this.restartMaxMs);
    this.log.info({ delayMs: delay, attempt: this.attempt }, 'restarting nvidia-smi');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restarts++;
      void this.discoverAndSpawn();
    }, delay);
  }

  /** The GPU part of a sample, from the latest round. Never waits on nvidia-smi. */
  gpuParts(now = Date.now()): SampleParts {
    if (this.status === 'absent') return { gpuCollector: 'absent', gpuError: null, gpus: [] };
    const age = now - this.roundAt;
    if (this.status === 'ok' && this.round && age <= this.staleAfterMs) {
      return { gpuCollector: 'ok', gpuError: null, gpus: this.round };
    }
    let state: GpuCollectorState;
    let text: string;
    if (this.status === 'error') {
      state = 'error';
      text = this.errorText ?? 'nvidia-smi failed';
    } else {
      state = 'stale';
      text =
        this.errorText ??
        (this.round
          ? `no data from nvidia-smi for ${Math.round(age / 1000)} s`
          : 'waiting for the first data from nvidia-smi');
    }
    const gpuState = state === 'error' ? 'error' : 'stale';
    const gpus = (this.round ?? []).map((g) => ({ ...g, state: gpuState, error: text }) as GpuMetrics);
    return { gpuCollector: state, gpuError: text, gpus };
  }

  /**
   * Processes on GPUs in MIG mode get the GPU/compute instance they run in (as of the last MIG
   * refresh); others are returned as they are.
   */
  placeMig(list: readonly GpuProcess[]): GpuProcess[] {
    if (this.migProcs.size === 0) return [...list];
    const indexOf = new Map(
      this.lastRound.filter((g) => g.migModeCurrent === true).map((g) => [g.uuid, g.index]),
    );
    return list.map((p) => {
      const index = indexOf.get(p.gpuUuid);
      const at = index === undefined ? undefined : this.migProcs.get(`${index}:${p.pid}`);
      return at ? { ...p, ...at } : p;
    });
  }

  /** `--query-compute-apps`, one shot with a timeout. */
  async computeApps(timeoutMs = this.commandTimeoutMs): Promise<GpuProcess[]> {
    const { stdout } = await runCommand(
      this.opts.nvidiaSmi,
      [`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
      timeoutMs,
      this.opts.env,
    );
    return parseComputeApps(stdout, COMPUTE_APP_FIELDS);
  }

  /** pid of the loop child, when one runs (tests). */
  get childPid(): number | undefined {
    return this.child?.pid;
  }

  /** Latest GPUs for the inventory. */
  get lastRound(): readonly GpuMetrics[] {
    return this.round ?? [];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.restartTimer = this.watchdog = this.quietTimer = null;
    const child = this.child;
    this.child = null;
    this.wake();
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 1_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}

/** The GPU collector: reads the latest loop round; never blocks on nvidia-smi. */
export function createNvidiaSmiGpuCollector(smi: NvidiaSmi): Collector {
  return {
    name: 'nvidia-smi',
    start: () => smi.start(),
    ready: (timeoutMs) => smi.ready(timeoutMs),
    collect: async () => smi.gpuParts(),
    fallback: (error) => ({ gpuCollector: 'error', gpuError: error.message, gpus: [] }),
    stop: () => smi.stop(),
  };
}

export interface ProcessCollectorOptions {
  /** Timeout of one `--query-compute-apps` call. Default min(interval, 5 s), at least 500 ms. */
  timeoutMs?: number;
  /** Where /proc facts come from (tests may point it elsewhere); null: do not read /proc. */
  proc?: ProcReader | null;
  /** A full process list at least this often (default 60 s); deltas in between. 0: always full. */
  fullEveryMs?: number;
  /** A process whose GPU memory moved by more than this fraction is resent (default 0.05). */
  memoryChange?: number;
  /**
   * `--query-compute-apps` is skipped (the last list reused) while no GPU's `memory.used` moved
   * since the last call and that call is younger than this. A process that starts or ends moves its
   * GPU's memory, so the list stays right while nvidia-smi is not spawned every second on a steady
   * node. Default 10 s; 0: query every interval.
   */
  maxReuseMs?: number;
  now?: () => number;
}

/** The compute-process collector: one `--query-compute-apps` per interval, enriched from /proc. */
export function createNvidiaSmiProcessCollector(
  smi: NvidiaSmi,
  options: ProcessCollectorOptions = {},
): Collector {
  const timeoutMs = options.timeoutMs ?? Math.max(500, Math.min(smi.intervalMs, 5_000));
  const proc = options.proc === undefined ? new ProcReader() : options.proc;
  // full lists and deltas: protocol/src/process-delta.ts (the server applies them with the same rules)
  const tracker = new ProcessDeltaEncoder(options);
  const now = options.now ?? Date.now;
  const maxReuseMs = options.maxReuseMs ?? 10_000;
  let last: { at: number; memory: string; list: GpuProcess[] } | null = null;
  const memoryKey = () => smi.lastRound.map((g) => `${g.uuid}=${g.memoryUsedMiB}`).join(',');
  return {
    name: 'nvidia-smi-processes',
    async collect() {
      if (!smi.available) return tracker.next([], now());
      if (smi.state === 'starting') return {};
      const t = now();
      const memory = memoryKey();
      if (smi.state === 'ok' && last && t - last.at < maxReuseMs && memory === last.memory) {
        return tracker.next(last.list, t);
      }
      last = null;
      const apps = (await smi.computeApps(timeoutMs)).slice(0, LIMITS.maxProcessesPerSample);
      const enriched = proc ? await proc.enrich(apps) : apps;
      // MIG placement (GPU/compute instance) where the source knows it (stand-ins in tests may not).
      const list = typeof smi.placeMig === 'function' ? smi.placeMig(enriched) : enriched;
      last = { at: t, memory, list };
      return tracker.next(list, t);
    },
    fallback: () => {
      last = null;
      tracker.forceFull();
      return {};
    },
    resync: () => tracker.forceFull(),
  };
}
