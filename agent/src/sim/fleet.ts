// A simulated GPU fleet: realistic, varying samples for many nodes, cheap enough for
// 1,000 nodes × 8 GPUs at 1 Hz in one process (objects are reused and mutated in place).
import type { GpuMetrics, GpuProcess, Inventory, Sample } from '@gpupulse/protocol';

export interface SimFleetOptions {
  nodes: number;
  gpusPerNode: number;
  prefix: string;
  intervalMs: number;
  /** Same seed → same fleet and same job history. */
  seed: number;
  /** Start time (ms); default Date.now(). */
  now?: number;
}

interface GpuModel {
  name: string;
  memoryTotalMiB: number;
  powerLimitWatts: number;
  idleWatts: number;
  clocksMaxSmMHz: number;
  clocksMemoryMHz: number;
  idleSmMHz: number;
  pcieGen: number;
}

const MODELS: readonly GpuModel[] = [
  {
    name: 'NVIDIA H100 80GB HBM3',
    memoryTotalMiB: 81559,
    powerLimitWatts: 700,
    idleWatts: 70,
    clocksMaxSmMHz: 1980,
    clocksMemoryMHz: 2619,
    idleSmMHz: 345,
    pcieGen: 5,
  },
  {
    name: 'NVIDIA A100-SXM4-80GB',
    memoryTotalMiB: 81920,
    powerLimitWatts: 400,
    idleWatts: 58,
    clocksMaxSmMHz: 1410,
    clocksMemoryMHz: 1593,
    idleSmMHz: 210,
    pcieGen: 4,
  },
  {
    name: 'NVIDIA L40S',
    memoryTotalMiB: 46068,
    powerLimitWatts: 350,
    idleWatts: 35,
    clocksMaxSmMHz: 2520,
    clocksMemoryMHz: 9001,
    idleSmMHz: 210,
    pcieGen: 4,
  },
];
const MODEL_WEIGHTS = [0.45, 0.35, 0.2];

export const SIM_USERS = [
  'kim.minji',
  'lee.jihoon',
  'park.seoyeon',
  'choi.hyunwoo',
  'jung.yuna',
  'han.dohyun',
  'oh.sujin',
  'yoon.taeho',
  'kang.eunji',
  'lim.junseo',
] as const;

/** Demo projects (ids as in the server's example projects file) and their relative sizes. */
export const SIM_PROJECTS = [
  { id: 'fu_video', weight: 30, k8sNamespace: null, envProject: null },
  { id: 'fu_docai', weight: 16, k8sNamespace: null, envProject: null },
  { id: 'ni_speech', weight: 12, k8sNamespace: null, envProject: null },
  { id: 'ni_agent', weight: 10, k8sNamespace: 'ni-agent', envProject: null },
  { id: 'ce_music', weight: 8, k8sNamespace: null, envProject: null },
  { id: 'ce_3dgen', weight: 7, k8sNamespace: 'ce-3dgen', envProject: null },
  { id: 'sh_medimg', weight: 3, k8sNamespace: null, envProject: 'sh-medimg' },
] as const;
/** Share of jobs with no project facts (→ unassigned on the server). */
const UNASSIGNED_SHARE = 0.1;

type Pattern = 'train' | 'inference' | 'idle-held';

interface Job {
  id: number;
  user: string;
  uid: number;
  pattern: Pattern;
  memFraction: number;
  endsAt: number;
  startedAt: number;
  facts: Partial<GpuProcess>;
  processes: GpuProcess[];
  base: number;
}

interface GpuSim {
  metrics: GpuMetrics;
  model: GpuModel;
  job: Job | null;
  hotUntil: number;
  phase: number;
}

interface SimNode {
  name: string;
  seq: number;
  gpus: GpuSim[];
  sample: Sample;
  processesDirty: boolean;
}

/** mulberry32: small, fast, seedable. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimFleet {
  readonly nodeNames: readonly string[];
  /** Advances node `i` to `now` and returns its sample (the same object each call, mutated). */
  tick(i: number, now?: number): Sample;
  inventory(i: number): Inventory;
}

export function createSimFleet(options: SimFleetOptions): SimFleet {
  const rnd = createRng(options.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const weighted = <T>(xs: readonly T[], w: readonly number[]): T => {
    const total = w.reduce((a, b) => a + b, 0);
    let r = rnd() * total;
    for (let i = 0; i < xs.length; i++) {
      r -= w[i] ?? 0;
      if (r <= 0) return xs[i] as T;
    }
    return xs[xs.length - 1] as T;
  };
  const start = options.now ?? Date.now();
  const tickSec = options.intervalMs / 1000;
  const meanJobMs = 20 * 60_000;
  // Occupancy ≈ λD / (1 + λD) = 0.75 → λD = 3: arrivals per free GPU per tick.
  const arrival = Math.min(1, (3 * options.intervalMs) / meanJobMs);
  let nextJobId = 1;
  let nextPid = 20_000;
  const projectWeights = SIM_PROJECTS.map((p) => p.weight);

  const newJob = (now: number, gpuCount: number, elapsedMs = 0): Job => {
    const user = pick(SIM_USERS);
    const uid = 2000 + SIM_USERS.indexOf(user as (typeof SIM_USERS)[number]);
    const r = rnd();
    const pattern: Pattern = r < 0.12 ? 'idle-held' : r < 0.35 ? 'inference' : 'train';
    const duration = Math.max(2 * 60_000, -Math.log(1 - rnd()) * meanJobMs);
    const facts: Partial<GpuProcess> = {};
    const slurmJob = String(400_000 + nextJobId);
    if (rnd() >= UNASSIGNED_SHARE) {
      const project = weighted(SIM_PROJECTS, projectWeights);
      if (project.k8sNamespace && rnd() < 0.6) {
        facts.k8sNamespace = project.k8sNamespace;
        facts.k8sPodUid = `0000${nextJobId.toString(16).padStart(4, '0')}-0000-4000-8000-${String(nextJobId).padStart(12, '0')}`;
      } else if (project.envProject && rnd() < 0.5) {
        facts.env = { GPUPULSE_PROJECT: project.envProject };
      } else {
        facts.slurmAccount = project.id;
        facts.slurmJobId = slurmJob;
        facts.slurmUser = user;
      }
    }
    const job: Job = {
      id: nextJobId++,
      user,
      uid,
      pattern,
      memFraction: pattern === 'idle-held' ? 0.1 + rnd() * 0.5 : 0.3 + rnd() * 0.65,
      startedAt: now - elapsedMs,
      // Exponential (memoryless) remaining time, so jobs already running at start-up last too.
      endsAt: now + duration,
      facts,
      processes: [],
      base: pattern === 'train' ? 82 + rnd() * 14 : pattern === 'inference' ? 55 + rnd() * 25 : 1 + rnd() * 3,
    };
    void gpuCount;
    return job;
  };

  const cmdFor = (job: Job) =>
    job.pattern === 'inference'
      ? `python -m vllm.entrypoints.api_server --port ${8000 + (job.id % 100)}`
      : `python train.py --config configs/run-${job.id}.yaml`;

  const nodes: SimNode[] = [];
  for (let n = 0; n < options.nodes; n++) {
    const model = weighted(MODELS, MODEL_WEIGHTS);
    const name = `${options.prefix}-${String(n + 1).padStart(4, '0')}`;
    const gpus: GpuSim[] = [];
    for (let g = 0; g < options.gpusPerNode; g++) {
      const uuid = `GPU-${(n + 1).toString(16).padStart(8, '0')}-${g.toString(16).padStart(4, '0')}-4000-8000-${(options.seed >>> 0).toString(16).padStart(12, '0')}`;
      const metrics: GpuMetrics = {
        index: g,
        uuid,
        name: model.name,
        state: 'ok',
        utilizationGpuPercent: 0,
        utilizationMemoryPercent: 0,
        memoryUsedMiB: 0,
        memoryTotalMiB: model.memoryTotalMiB,
        temperatureCelsius: Math.round(30 + rnd() * 5),
        powerDrawWatts: model.idleWatts,
        powerLimitWatts: model.powerLimitWatts,
        fanSpeedPercent: null, // passively cooled datacenter cards report [N/A]
        pstate: 'P8',
        clocksSmMHz: model.idleSmMHz,
        clocksMemoryMHz: model.clocksMemoryMHz,
        memoryFreeMiB: model.memoryTotalMiB,
        clocksMaxSmMHz: model.clocksMaxSmMHz,
        clocksEventReasonsActive: 1,
        clocksEventReasons: ['gpu_idle'],
        eccModeCurrent: true,
        eccErrorsCorrectedVolatile: 0,
        eccErrorsUncorrectedVolatile: 0,
        pcieLinkGenCurrent: model.pcieGen,
        pcieLinkWidthCurrent: 16,
        persistenceMode: true,
        migModeCurrent: false,
        driverVersion: '570.133.20',
        pciBusId: `00000000:${(0x18 + g * 0x10).toString(16).toUpperCase().padStart(2, '0')}:00.0`,
      };
      gpus.push({ metrics, model, job: null, hotUntil: 0, phase: rnd() * Math.PI * 2 });
    }
    // Start with a realistic mix: jobs on about three quarters of the GPUs, some already running a while.
    let g = 0;
    while (g < gpus.length) {
      const size = Math.min(gpus.length - g, pick([1, 1, 1, 2, 2, 4, 8]));
      if (rnd() < 0.75) {
        const job = newJob(start, size, rnd() * meanJobMs);
        for (let k = g; k < g + size; k++) {
          const gs = gpus[k] as GpuSim;
          gs.job = job;
        }
      }
      g += size;
    }
    nodes.push({
      name,
      seq: 0,
      gpus,
      sample: {
        seq: 0,
        ts: start,
        gpuCollector: 'ok',
        gpuError: null,
        gpus: gpus.map((x) => x.metrics),
        host: null,
        processes: [],
      },
      processesDirty: true,
    });
    for (const gs of gpus) if (gs.job) attachProcess(gs);
  }

  function attachProcess(gs: GpuSim): void {
    const job = gs.job;
    if (!job) return;
    job.processes.push({
      gpuUuid: gs.metrics.uuid,
      pid: nextPid++,
      usedMemoryMiB: 0,
      name: 'python',
      cmdline: cmdFor(job),
      uid: job.uid,
      user: job.user,
      startedAt: job.startedAt,
      ...job.facts,
    });
  }

  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  const round1 = (v: number) => Math.round(v * 10) / 10;

  const host = (n: SimNode, util: number) => ({
    cpuPercent: round1(clamp(5 + util * 0.35 + rnd() * 6, 0, 100)),
    memoryUsedBytes: Math.round((200 + util * 6 + rnd() * 20) * 2 ** 30),
    memoryTotalBytes: 2048 * 2 ** 30,
    load1: round1(util * 0.6 + rnd() * 2),
    load5: round1(util * 0.55 + 1),
    load15: round1(util * 0.5 + 1),
    netRxBytesPerSec: Math.round(util * 2e6 * (0.5 + rnd())),
    netTxBytesPerSec: Math.round(util * 1e6 * (0.5 + rnd())),
    uptimeSeconds: Math.round(864_000 + (n.seq * options.intervalMs) / 1000),
  });

  return {
    nodeNames: nodes.map((n) => n.name),
    tick(i, now = Date.now()) {
      const node = nodes[i];
      if (!node) throw new Error(`no simulated node ${i}`);
      let utilSum = 0;
      // End jobs whose time is up (all their GPUs at once).
      for (const gs of node.gpus) {
        if (gs.job && gs.job.endsAt <= now) {
          const ended = gs.job;
          for (const other of node.gpus) if (other.job === ended) other.job = null;
          node.processesDirty = true;
        }
      }
      // Start new jobs on free GPUs (single- or multi-GPU on free neighbours).
      for (let g = 0; g < node.gpus.length; g++) {
        const gs = node.gpus[g] as GpuSim;
        if (gs.job || rnd() >= arrival) continue;
        let size = pick([1, 1, 1, 2, 2, 4]);
        while (size > 1 && node.gpus.slice(g, g + size).some((x) => x.job)) size >>= 1;
        if (g + size > node.gpus.length) size = 1;
        const job = newJob(now, size);
        for (let k = g; k < g + size; k++) {
          const x = node.gpus[k] as GpuSim;
          x.job = job;
          attachProcess(x);
        }
        node.processesDirty = true;
      }
      for (const gs of node.gpus) {
        const m = gs.metrics;
        const model = gs.model;
        const job = gs.job;
        gs.phase += 0.05 * tickSec;
        let util = 0;
        let mem = 0;
        if (job) {
          const wave = job.pattern === 'inference' ? Math.sin(gs.phase * 3) * 15 : Math.sin(gs.phase) * 4;
          util = clamp(job.base + wave + (rnd() - 0.5) * 8, job.pattern === 'idle-held' ? 0 : 40, 100);
          if (job.pattern === 'idle-held') util = clamp(job.base + (rnd() - 0.5) * 2, 0, 4.9);
          mem = clamp(
            job.memFraction * model.memoryTotalMiB * (0.97 + rnd() * 0.03),
            0,
            model.memoryTotalMiB,
          );
        }
        // Now and then a GPU runs hot for a few minutes.
        if (gs.hotUntil < now && job && job.pattern === 'train' && rnd() < 0.00004 * tickSec) {
          gs.hotUntil = now + (2 + rnd() * 8) * 60_000;
        }
        const hot = gs.hotUntil > now;
        const targetTemp = hot ? 88 + rnd() * 4 : 30 + util * 0.4 + rnd();
        const temp =
          (m.temperatureCelsius ?? 30) +
          (targetTemp - (m.temperatureCelsius ?? 30)) * Math.min(1, 0.08 * tickSec * 4);
        m.utilizationGpuPercent = Math.round(util);
        m.utilizationMemoryPercent = Math.round(util * (0.3 + 0.4 * (job?.memFraction ?? 0)));
        m.memoryUsedMiB = Math.round(mem);
        m.memoryFreeMiB = model.memoryTotalMiB - Math.round(mem);
        m.temperatureCelsius = Math.round(temp);
        const power = model.idleWatts + (model.powerLimitWatts - model.idleWatts) * (util / 100) * 0.92;
        m.powerDrawWatts = round1(clamp(power * (0.97 + rnd() * 0.06), 0, model.powerLimitWatts));
        m.pstate = job ? 'P0' : 'P8';
        m.clocksSmMHz =
          util < 1 ? model.idleSmMHz : hot ? Math.round(model.clocksMaxSmMHz * 0.7) : model.clocksMaxSmMHz;
        const mask = (util < 1 ? 0x1 : 0) | (hot ? 0x40 : 0) | (util > 95 && !hot ? 0x4 : 0);
        if (mask !== m.clocksEventReasonsActive) {
          m.clocksEventReasonsActive = mask;
          m.clocksEventReasons = [
            ...(mask & 0x1 ? ['gpu_idle'] : []),
            ...(mask & 0x4 ? ['sw_power_cap'] : []),
            ...(mask & 0x40 ? ['hw_thermal_slowdown'] : []),
          ];
        }
        utilSum += util;
        if (job) {
          for (const p of job.processes) if (p.gpuUuid === m.uuid) p.usedMemoryMiB = Math.round(mem);
        }
      }
      if (node.processesDirty) {
        const seen = new Set<Job>();
        const procs: GpuProcess[] = [];
        for (const gs of node.gpus) {
          if (gs.job && !seen.has(gs.job)) {
            seen.add(gs.job);
            // keep only processes on GPUs the job still holds
            gs.job.processes = gs.job.processes.filter((p) =>
              node.gpus.some((x) => x.job === gs.job && x.metrics.uuid === p.gpuUuid),
            );
            procs.push(...gs.job.processes);
          }
        }
        node.sample.processes = procs;
        node.processesDirty = false;
      }
      node.sample.seq = node.seq++;
      // Never the same ts twice for a node (as a real agent's samples): two rounds of a starved
      // simulator may run in the same millisecond, and InfluxDB keeps one point per series and time.
      node.sample.ts = node.seq === 1 ? Math.round(now) : Math.max(Math.round(now), node.sample.ts + 1);
      node.sample.host = host(node, utilSum / Math.max(1, node.gpus.length));
      return node.sample;
    },
    inventory(i) {
      const node = nodes[i];
      if (!node) throw new Error(`no simulated node ${i}`);
      return {
        agentVersion: 'sim-0.1.0',
        hostname: node.name,
        os: 'Ubuntu 22.04.5 LTS',
        kernel: '5.15.0-185-generic',
        cpuModel: 'AMD EPYC 9454 48-Core Processor',
        cpuCores: 96,
        memoryTotalBytes: 2048 * 2 ** 30,
        nvidiaSmiVersion: '570.133.20',
        driverVersion: '570.133.20',
        cudaVersion: '12.8',
        gpus: node.gpus.map((g) => ({
          index: g.metrics.index,
          uuid: g.metrics.uuid,
          name: g.metrics.name,
          memoryTotalMiB: g.metrics.memoryTotalMiB,
        })),
      };
    },
  };
}
