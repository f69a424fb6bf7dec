// Facts about GPU processes from /proc: command line, uid → user, start time, Slurm and
// Kubernetes facts from cgroup and environ. Pure parsers plus a small cached reader.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GpuProcess } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';

/** Environment variables read for attribution facts (besides the configurable project ones). */
export const FACT_ENV = ['SLURM_JOB_ID', 'SLURM_JOB_ACCOUNT', 'SLURM_JOB_USER', 'POD_NAMESPACE'] as const;

/** Default project environment variables copied into `GpuProcess.env` (`--project-env`). */
export const DEFAULT_PROJECT_ENV = ['GPUPULSE_PROJECT', 'PROJECT'] as const;

/** @deprecated kept for compatibility: the facts variables plus the default project variables. */
export const CHOSEN_ENV = [...DEFAULT_PROJECT_ENV, ...FACT_ENV] as const;

export type ProcFacts = Omit<GpuProcess, 'gpuUuid' | 'pid' | 'usedMemoryMiB' | 'name'>;

/** `/proc/<pid>/cmdline` (NUL-separated) → one line; null when empty (kernel threads, zombies). */
export function parseCmdline(buf: Buffer | string): string | null {
  const s = buf.toString().replace(/\0+$/, '').replace(/\0/g, ' ').trim();
  return s ? s.slice(0, LIMITS.maxTextLength) : null;
}

/** Real uid from `/proc/<pid>/status` (`Uid:\treal\teffective\t…`). */
export function parseStatusUid(text: string): number | null {
  const m = /^Uid:\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** `/etc/passwd` → uid → user name. */
export function parsePasswd(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, , uid] = line.split(':');
    const n = Number(uid);
    if (name && Number.isInteger(n) && !out.has(n)) out.set(n, name);
  }
  return out;
}

/** Start time in clock ticks after boot: field 22 of `/proc/<pid>/stat` (after the `(comm)`). */
export function parseStatStartTicks(text: string): number | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(' ');
  const v = Number(fields[19]); // field 22 overall; fields[0] is field 3 (state)
  return Number.isFinite(v) ? v : null;
}

/** `btime` (boot time, seconds since the epoch) from `/proc/stat`. */
export function parseBootTime(text: string): number | null {
  const m = /^btime\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

export interface CgroupFacts {
  slurmJobId?: string;
  /** True when the Slurm job directory is not a number (a SLUID, Slurm 25.11+). */
  slurmJobIsSluid?: boolean;
  k8sPodUid?: string;
  k8sQosClass?: string;
  containerId?: string;
}

// Slurm: v1 `/slurm/uid_N/job_N/step_X`, v2 `/system.slice/slurmstepd.scope/job_N/step_X/…`
// (also `slurm_<node>.scope`); newer Slurm names job directories by SLUID (`job_<alnum>`).
const SLURM_JOB = /slurm[^\n]*?\/job_([0-9A-Za-z]+)(?:\/|$)/m;
// Kubernetes pod uid: cgroupfs `pod<uid>`, systemd `kubepods-…-pod<uid_with_underscores>.slice`.
const K8S_POD =
  /kubepods[^\n]*?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/i;
const K8S_QOS = /kubepods[-/](besteffort|burstable)/i;
// Containers: `/docker/<id>`, `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`,
// `libpod-<id>.scope`, `containerd-<id>.scope`, cgroupfs Kubernetes `/kubepods/…/pod<uid>/<id>`.
const CONTAINER =
  /(?:\/docker\/|docker-|cri-containerd-|crio-|libpod-|containerd-|\/)([0-9a-f]{64})(?:\.scope)?(?:\/|$)/m;

/** Slurm job id, Kubernetes pod uid / QoS class and container id from `/proc/<pid>/cgroup`. */
export function parseCgroup(text: string): CgroupFacts {
  const out: CgroupFacts = {};
  const slurm = SLURM_JOB.exec(text);
  if (slurm?.[1]) {
    out.slurmJobId = slurm[1];
    if (!/^\d+$/.test(slurm[1])) out.slurmJobIsSluid = true;
  }
  const pod = K8S_POD.exec(text);
  if (pod?.[1]) {
    out.k8sPodUid = pod[1].replace(/_/g, '-').toLowerCase();
    const qos = K8S_QOS.exec(text);
    out.k8sQosClass = qos?.[1] ? qos[1].toLowerCase() : 'guaranteed';
  }
  const ctr = CONTAINER.exec(text);
  if (ctr?.[1]) out.containerId = ctr[1];
  return out;
}

/** `/proc/<pid>/environ` → the chosen variables only. */
export function parseEnviron(
  buf: Buffer | string,
  keep: readonly string[] = CHOSEN_ENV,
): Record<string, string> {
  const wanted = new Set(keep);
  const out: Record<string, string> = {};
  for (const entry of buf.toString().split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const k = entry.slice(0, eq);
    if (wanted.has(k)) out[k] = entry.slice(eq + 1).slice(0, LIMITS.maxTextLength);
  }
  return out;
}

const name = (s: string | undefined | null) => (s ? s.slice(0, LIMITS.maxNameLength) : null);

/** Turns the raw /proc texts of one process into facts (unreadable pieces are null, never guessed). */
export function procFacts(input: {
  cmdline: string | null;
  uid: number | null;
  users: ReadonlyMap<number, string>;
  startedAt: number | null;
  cgroup: CgroupFacts;
  /** The process's variables (facts + project ones), null when environ was unreadable. */
  env: Record<string, string> | null;
  projectEnv?: readonly string[];
}): ProcFacts {
  const env = input.env ?? {};
  // A numeric job id from cgroup wins; with a SLUID directory, environ's numeric id when readable.
  const cgJob = input.cgroup.slurmJobId;
  const slurmJobId = cgJob && !input.cgroup.slurmJobIsSluid ? cgJob : (env.SLURM_JOB_ID ?? cgJob);
  const facts: ProcFacts = {
    cmdline: input.cmdline,
    uid: input.uid,
    user: input.uid === null ? null : name(input.users.get(input.uid)),
    startedAt: input.startedAt,
    slurmJobId: name(slurmJobId),
    slurmAccount: name(env.SLURM_JOB_ACCOUNT),
    slurmUser: name(env.SLURM_JOB_USER),
    k8sPodUid: name(input.cgroup.k8sPodUid),
    k8sNamespace: name(env.POD_NAMESPACE),
    k8sQosClass: input.cgroup.k8sQosClass ?? null,
    containerId: name(input.cgroup.containerId),
  };
  if (input.env) {
    const keep = input.projectEnv ?? DEFAULT_PROJECT_ENV;
    const chosen: Record<string, string> = {};
    for (const k of keep) {
      const v = input.env[k];
      if (v !== undefined) chosen[k] = v;
    }
    if (Object.keys(chosen).length > 0) facts.env = chosen;
  }
  return facts;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export interface ProcReaderOptions {
  root?: string;
  passwdPath?: string;
  /** Clock ticks per second; default: `getconf CLK_TCK` once, 100 when that fails. */
  clkTck?: number;
  /** Variables copied into `GpuProcess.env` (default GPUPULSE_PROJECT, PROJECT). */
  projectEnv?: readonly string[];
  /** uid → user name for uids /etc/passwd lacks (NSS: LDAP, SSSD …); default `getent passwd <uid>`. */
  lookupUser?: (uid: number) => Promise<string | null>;
  /** A cached pid is re-validated (start time re-read, pid reuse) at most this often. Default 10 s. */
  revalidateMs?: number;
}

function execText(file: string, args: string[], timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout) =>
      resolve(err ? null : stdout),
    );
  });
}

/** `getent passwd <uid>` → user name (NSS), null when unknown or getent is missing. */
export async function getentUser(uid: number): Promise<string | null> {
  const out = await execText('getent', ['passwd', String(uid)], 2_000);
  const name = out?.split(':')[0]?.trim();
  return name ? name : null;
}

let clkTckPromise: Promise<number> | null = null;
/** `getconf CLK_TCK`, once per process; 100 when it fails. */
export function systemClkTck(): Promise<number> {
  clkTckPromise ??= execText('getconf', ['CLK_TCK'], 2_000).then((out) => {
    const n = Number(out?.trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  });
  return clkTckPromise;
}

/**
 * Reads and caches facts per pid. A cached pid is only re-validated (its start time re-read, to
 * notice pid reuse) every `revalidateMs`, so a steady set of processes costs no /proc reads per tick.
 */
export class ProcReader {
  private readonly cache = new Map<number, { start: number | null; checkedAt: number; facts: ProcFacts }>();
  private users: Map<number, string> | null = null;
  private usersAt = 0;
  private readonly nss = new Map<number, { name: string | null; at: number }>();
  private bootTime: number | null | undefined;
  private clkTck: number | undefined;
  private readonly root: string;
  private readonly passwdPath: string;
  private readonly wantedEnv: string[];
  private readonly projectEnv: readonly string[];
  private readonly lookupUser: (uid: number) => Promise<string | null>;
  private readonly revalidateMs: number;
  /** /proc/<pid> directories read since start (tests, benchmarks). */
  reads = 0;

  constructor(options: ProcReaderOptions = {}) {
    this.root = options.root ?? '/proc';
    this.passwdPath = options.passwdPath ?? '/etc/passwd';
    this.clkTck = options.clkTck;
    this.projectEnv = options.projectEnv ?? DEFAULT_PROJECT_ENV;
    this.wantedEnv = [...new Set([...FACT_ENV, ...this.projectEnv])];
    this.lookupUser = options.lookupUser ?? getentUser;
    this.revalidateMs = options.revalidateMs ?? 10_000;
  }

  private async userName(uid: number): Promise<string | null> {
    if (!this.users || Date.now() - this.usersAt > 300_000) {
      this.users = parsePasswd((await readText(this.passwdPath)) ?? '');
      this.usersAt = Date.now();
      this.nss.clear();
    }
    const local = this.users.get(uid);
    if (local) return local;
    const hit = this.nss.get(uid);
    if (hit && Date.now() - hit.at < 300_000) return hit.name;
    const found = await this.lookupUser(uid).catch(() => null);
    this.nss.set(uid, { name: found, at: Date.now() });
    return found;
  }

  async facts(pid: number, now = Date.now()): Promise<ProcFacts> {
    const dir = join(this.root, String(pid));
    const hit = this.cache.get(pid);
    if (hit && now - hit.checkedAt < this.revalidateMs) return hit.facts;
    const stat = await readText(join(dir, 'stat'));
    const start = stat ? parseStatStartTicks(stat) : null;
    if (hit && hit.start === start && start !== null) {
      hit.checkedAt = now;
      return hit.facts;
    }

    this.reads++;
    if (this.bootTime === undefined)
      this.bootTime = parseBootTime((await readText(join(this.root, 'stat'))) ?? '');
    this.clkTck ??= await systemClkTck();
    const [cmdline, status, cgroup, environ] = await Promise.all([
      readFile(join(dir, 'cmdline')).catch(() => null),
      readText(join(dir, 'status')),
      readText(join(dir, 'cgroup')),
      readFile(join(dir, 'environ')).catch(() => null),
    ]);
    const uid = status ? parseStatusUid(status) : null;
    const startedAt =
      start !== null && this.bootTime ? Math.round((this.bootTime + start / this.clkTck) * 1000) : null;
    const users = new Map<number, string>();
    if (uid !== null) {
      const n = await this.userName(uid);
      if (n) users.set(uid, n);
    }
    const facts = procFacts({
      cmdline: cmdline ? parseCmdline(cmdline) : null,
      uid,
      users,
      startedAt,
      cgroup: cgroup ? parseCgroup(cgroup) : {},
      env: environ ? parseEnviron(environ, this.wantedEnv) : null,
      projectEnv: this.projectEnv,
    });
    if (stat) this.cache.set(pid, { start, checkedAt: now, facts });
    return facts;
  }

  /** Adds /proc facts to each process; forgets pids that are gone. */
  async enrich(apps: GpuProcess[]): Promise<GpuProcess[]> {
    const live = new Set(apps.map((a) => a.pid));
    for (const pid of this.cache.keys()) if (!live.has(pid)) this.cache.delete(pid);
    const now = Date.now();
    return Promise.all(apps.map(async (a) => ({ ...a, ...(await this.facts(a.pid, now)) })));
  }
}
