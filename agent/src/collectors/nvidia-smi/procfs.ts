// Facts about GPU processes from /proc: command line, uid → user, start time, Slurm and
// Kubernetes facts from cgroup and environ. Pure parsers plus a small cached reader.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GpuProcess } from '@gpupulse/protocol';
import { LIMITS } from '@gpupulse/protocol';

/** Environment variables copied into `GpuProcess.env` when readable. */
export const CHOSEN_ENV = [
  'GPUPULSE_PROJECT',
  'SLURM_JOB_ID',
  'SLURM_JOB_ACCOUNT',
  'SLURM_JOB_USER',
  'SLURM_JOB_PARTITION',
  'POD_NAMESPACE',
] as const;

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
  k8sPodUid?: string;
  k8sQosClass?: string;
  containerId?: string;
}

/** Slurm job id, Kubernetes pod uid / QoS class and container id from `/proc/<pid>/cgroup`. */
export function parseCgroup(text: string): CgroupFacts {
  const out: CgroupFacts = {};
  const slurm = /\/job_(\d+)(?:\/|$)/m.exec(text);
  if (slurm?.[1]) out.slurmJobId = slurm[1];
  const pod = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/i.exec(text);
  if (pod?.[1]) out.k8sPodUid = pod[1].replace(/_/g, '-');
  const qos = /kubepods[-/.](besteffort|burstable)/i.exec(text);
  if (pod?.[1]) out.k8sQosClass = qos?.[1] ? qos[1].toLowerCase() : 'guaranteed';
  const ctr =
    /(?:docker-|cri-containerd-|crio-|containerd-|\/docker\/|\/)([0-9a-f]{64})(?:\.scope)?(?:\/|$)/m.exec(
      text,
    );
  if (ctr?.[1]) out.containerId = ctr[1];
  return out;
}

/** `/proc/<pid>/environ` → the chosen variables only. */
export function parseEnviron(
  buf: Buffer | string,
  keep: readonly string[] = CHOSEN_ENV,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of buf.toString().split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const k = entry.slice(0, eq);
    if (keep.includes(k)) out[k] = entry.slice(eq + 1).slice(0, LIMITS.maxTextLength);
  }
  return out;
}

const name = (s: string | undefined | null) => (s ? s.slice(0, LIMITS.maxNameLength) : null);

/** Turns the raw /proc texts of one process into facts (all optional pieces may be null). */
export function procFacts(input: {
  cmdline: string | null;
  uid: number | null;
  users: ReadonlyMap<number, string>;
  startedAt: number | null;
  cgroup: CgroupFacts;
  env: Record<string, string> | null;
}): ProcFacts {
  const env = input.env ?? {};
  const facts: ProcFacts = {
    cmdline: input.cmdline,
    uid: input.uid,
    user: input.uid === null ? null : name(input.users.get(input.uid)),
    startedAt: input.startedAt,
    slurmJobId: name(input.cgroup.slurmJobId ?? env.SLURM_JOB_ID),
    slurmAccount: name(env.SLURM_JOB_ACCOUNT),
    slurmUser: name(env.SLURM_JOB_USER),
    k8sPodUid: name(input.cgroup.k8sPodUid),
    k8sNamespace: name(env.POD_NAMESPACE),
    k8sQosClass: input.cgroup.k8sQosClass ?? null,
    containerId: name(input.cgroup.containerId),
  };
  if (input.env && Object.keys(input.env).length > 0) facts.env = input.env;
  return facts;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/** Reads and caches facts per pid (re-read when the pid's start time changes, i.e. pid reuse). */
export class ProcReader {
  private readonly cache = new Map<number, { start: number | null; facts: ProcFacts }>();
  private users: Map<number, string> | null = null;
  private usersAt = 0;
  private bootTime: number | null | undefined;

  constructor(
    private readonly root = '/proc',
    private readonly passwdPath = '/etc/passwd',
    /** Clock ticks per second (`getconf CLK_TCK`); 100 on every Linux distribution in use. */
    private readonly clkTck = 100,
  ) {}

  private async userMap(): Promise<Map<number, string>> {
    if (!this.users || Date.now() - this.usersAt > 300_000) {
      this.users = parsePasswd((await readText(this.passwdPath)) ?? '');
      this.usersAt = Date.now();
    }
    return this.users;
  }

  async facts(pid: number): Promise<ProcFacts> {
    const dir = join(this.root, String(pid));
    const stat = await readText(join(dir, 'stat'));
    const start = stat ? parseStatStartTicks(stat) : null;
    const hit = this.cache.get(pid);
    if (hit && hit.start === start && start !== null) return hit.facts;

    if (this.bootTime === undefined)
      this.bootTime = parseBootTime((await readText(join(this.root, 'stat'))) ?? '');
    const [cmdline, status, cgroup, environ] = await Promise.all([
      readFile(join(dir, 'cmdline')).catch(() => null),
      readText(join(dir, 'status')),
      readText(join(dir, 'cgroup')),
      readFile(join(dir, 'environ')).catch(() => null),
    ]);
    const uid = status ? parseStatusUid(status) : null;
    const startedAt =
      start !== null && this.bootTime ? Math.round((this.bootTime + start / this.clkTck) * 1000) : null;
    const facts = procFacts({
      cmdline: cmdline ? parseCmdline(cmdline) : null,
      uid,
      users: await this.userMap(),
      startedAt,
      cgroup: cgroup ? parseCgroup(cgroup) : {},
      env: environ ? parseEnviron(environ) : null,
    });
    if (stat) this.cache.set(pid, { start, facts });
    return facts;
  }

  /** Adds /proc facts to each process; forgets pids that are gone. */
  async enrich(apps: GpuProcess[]): Promise<GpuProcess[]> {
    const live = new Set(apps.map((a) => a.pid));
    for (const pid of this.cache.keys()) if (!live.has(pid)) this.cache.delete(pid);
    return Promise.all(apps.map(async (a) => ({ ...a, ...(await this.facts(a.pid)) })));
  }
}
