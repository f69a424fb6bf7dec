// `gpupulse-agent --check`: which collectors work, nvidia-smi version, GPUs found, the node's
// inventory (systeminformation, loaded here only), server reachable and token accepted. Prints one line per check on stdout; exit code 1 when any check failed.
import { access, constants } from 'node:fs/promises';
import { AGENT_NAMESPACE, type AgentAuth, PROTOCOL_VERSION } from '@gpupulse/protocol';
import { io } from 'socket.io-client';
import { createCollectors } from './collectors/index.ts';
import type { AgentConfig } from './config.ts';
import type { Logger } from './logger.ts';
import { Runner } from './runner.ts';
import { AGENT_VERSION } from './version.ts';

export interface CheckLine {
  ok: boolean | null;
  what: string;
  detail: string;
}

function line(l: CheckLine): string {
  const mark = l.ok === null ? 'skip' : l.ok ? 'ok  ' : 'FAIL';
  return `${mark}  ${l.what}: ${l.detail}`;
}

/** Connects to `<server>/agent` with the token; resolves with null when accepted, else the reason. */
export function checkServer(
  url: string,
  token: string,
  node: string,
  timeoutMs = 10_000,
  ca?: string,
): Promise<string | null> {
  return new Promise((resolve) => {
    const auth: AgentAuth = {
      token,
      node,
      protocolVersion: PROTOCOL_VERSION,
      agentVersion: AGENT_VERSION,
    };
    const socket = io(`${url.replace(/\/+$/, '')}${AGENT_NAMESPACE}`, {
      auth,
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      ...(ca ? { ca } : {}),
    });
    const done = (why: string | null) => {
      clearTimeout(t);
      socket.removeAllListeners();
      socket.disconnect();
      resolve(why);
    };
    const t = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => done(null));
    socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string } }) => {
      done(err.data?.code ? `${err.data.code}: ${err.data.message ?? ''}` : `unreachable (${err.message})`);
    });
  });
}

/**
 * The node's one-off inventory for `--check`: OS, kernel, machine, CPU, memory, read through
 * systeminformation (imported here only: the running agent never loads it on Linux). Bounded by
 * `timeoutMs` because its commands (dmidecode, PowerShell …) may hang; si.graphics() is left out on
 * purpose (it runs nvidia-smi without a timeout; the nvidia-smi line above covers the GPUs).
 */
export async function siInventory(timeoutMs = 10_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const si = await Promise.race([import('systeminformation'), timeout]);
    const [sys, osi, cpu, mem] = await Promise.race([
      Promise.all([si.system(), si.osInfo(), si.cpu(), si.mem()]),
      timeout,
    ]);
    const words = (...xs: Array<string | undefined>) =>
      xs
        .map((x) => x?.trim())
        .filter((x) => x && x !== 'Default string' && x !== 'To Be Filled By O.E.M.')
        .join(' ');
    const machine = words(sys.manufacturer, sys.model) || 'unknown machine';
    return [
      `${words(osi.distro, osi.release) || osi.platform} (kernel ${osi.kernel || 'unknown'}, ${osi.arch})`,
      `${machine}${sys.virtual ? ' (virtual)' : ''}`,
      `CPU ${words(cpu.manufacturer, cpu.brand) || 'unknown'} (${cpu.physicalCores} cores, ${cpu.cores} threads)`,
      `${(mem.total / 2 ** 30).toFixed(1)} GiB memory`,
    ].join(', ');
  } finally {
    clearTimeout(timer);
  }
}

export async function runCheck(
  config: AgentConfig,
  logger: Logger,
  out: { write(s: string): unknown } = process.stdout,
  ca?: string,
): Promise<number> {
  const lines: CheckLine[] = [];
  const print = (l: CheckLine) => {
    lines.push(l);
    out.write(`${line(l)}\n`);
  };
  const { collectors, nvidiaSmi } = createCollectors({
    nvidiaSmi: config.nvidiaSmi,
    intervalMs: config.intervalMs,
    logger,
    projectEnv: config.projectEnv,
    kmsg: config.kmsg === 'off' ? null : config.kmsg,
  });
  const runner = new Runner({ collectors, intervalMs: config.intervalMs, logger, timeoutMs: 10_000 });
  const sample = await runner.collectOnce(15_000);
  await runner.stop();

  const v = nvidiaSmi.version;
  if (sample.gpuCollector === 'absent') {
    print({ ok: false, what: 'nvidia-smi', detail: `${config.nvidiaSmi} not found` });
  } else if (sample.gpuCollector === 'ok') {
    print({
      ok: true,
      what: 'nvidia-smi',
      detail: `version ${v?.nvidiaSmiVersion ?? 'unknown'}, driver ${v?.driverVersion ?? 'unknown'}, CUDA ${v?.cudaVersion ?? 'unknown'}`,
    });
  } else {
    print({
      ok: false,
      what: 'nvidia-smi',
      detail: `${sample.gpuCollector}: ${sample.gpuError ?? 'no data'}`,
    });
  }
  print({
    ok: sample.gpuCollector === 'ok' ? sample.gpus.length > 0 : false,
    what: 'GPUs',
    detail:
      sample.gpus.length > 0
        ? `${sample.gpus.length} found: ${sample.gpus.map((g) => `${g.index} ${g.name}`).join('; ')}`
        : 'none found',
  });
  try {
    print({ ok: true, what: 'inventory', detail: await siInventory() });
  } catch (e) {
    // informational: a node whose inventory commands hang still passes the check
    print({ ok: null, what: 'inventory', detail: `systeminformation: ${(e as Error).message}` });
  }
  const errors = sample.agent?.collectorErrors ?? {};
  const durations = sample.agent?.collectorDurationsMs ?? {};
  for (const c of collectors) {
    const failed = (errors[c.name] ?? 0) > 0;
    let detail = failed ? 'failed (see the log)' : `works (${durations[c.name] ?? 0} ms)`;
    if (c.name === 'nvidia-smi-processes' && !failed)
      detail += `, ${sample.processes?.length ?? 0} GPU process(es)`;
    if (c.name === 'host' && !failed)
      detail += sample.host ? `, ${sample.host.cpuPerCorePercent?.length ?? 0} cores` : '';
    if (c.name === 'xid') {
      const readable = await access(config.kmsg, constants.R_OK).then(
        () => true,
        () => false,
      );
      print({
        ok: readable ? !failed : null,
        what: 'collector xid',
        detail: readable ? `follows ${config.kmsg}` : `${config.kmsg} not readable: XID events off`,
      });
      continue;
    }
    print({ ok: !failed, what: `collector ${c.name}`, detail });
  }
  if (config.spoolDir) {
    const w = await access(config.spoolDir, constants.W_OK).then(
      () => true,
      () => false,
    );
    print({
      ok: w,
      what: 'spool dir',
      detail: w ? `${config.spoolDir} writable` : `${config.spoolDir} not writable`,
    });
  }
  if (config.servers.length > 0 && config.token) {
    // Each server in failover order: a backup that is down or refuses the token fails the check too.
    const token = config.token;
    const results = await Promise.all(
      config.servers.map((url) => checkServer(url, token, config.node, 10_000, ca)),
    );
    config.servers.forEach((url, i) => {
      const why = results[i] ?? null;
      const what = config.servers.length > 1 ? `server ${i + 1}/${config.servers.length}` : 'server';
      print({
        ok: why === null,
        what,
        detail: why === null ? `${url} reachable, token accepted` : `${url}: ${why}`,
      });
    });
  } else {
    print({ ok: null, what: 'server', detail: 'not configured (--server, --token)' });
  }
  const failed = lines.filter((l) => l.ok === false).length;
  out.write(failed === 0 ? 'all checks passed\n' : `${failed} check(s) failed\n`);
  return failed === 0 ? 0 : 1;
}
