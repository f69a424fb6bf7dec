// End to end through the real collector and a spawned fake nvidia-smi replaying captures.
import { GpuProcessSchema } from '@gpupulse/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_NVIDIA_SMI_PATH } from '../../index.ts';
import { createSilentLogger } from '../../logger.ts';
import { createNvidiaSmiProcessCollector, NvidiaSmi, type NvidiaSmiOptions } from './collector.ts';

const running: NvidiaSmi[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

function fake(env: Record<string, string>, opts: Partial<NvidiaSmiOptions> = {}): NvidiaSmi {
  const smi = new NvidiaSmi({
    nvidiaSmi: FAKE_NVIDIA_SMI_PATH,
    intervalMs: 200,
    logger: createSilentLogger(),
    env: { ...process.env, ...env },
    restartInitialMs: 100,
    restartMaxMs: 400,
    commandTimeoutMs: 2_000,
    ...opts,
  });
  running.push(smi);
  return smi;
}

const until = async (cond: () => boolean, timeoutMs = 5_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('nvidia-smi collector with the fake nvidia-smi', () => {
  it('loop mode: rounds of all GPUs keep arriving from one child', async () => {
    const smi = fake({ FAKE_NVIDIA_SMI_GPUS: '4' });
    await smi.start();
    await smi.ready(5_000);
    const parts = smi.gpuParts();
    expect(parts.gpuCollector).toBe('ok');
    expect(parts.gpus?.map((g) => g.index)).toEqual([0, 1, 2, 3]);
    expect(parts.gpus?.[0]).toMatchObject({
      name: 'NVIDIA H100 80GB HBM3',
      utilizationGpuPercent: 100,
      powerDrawWatts: 631.95,
      state: 'ok',
    });
    expect(new Set(parts.gpus?.map((g) => g.uuid)).size).toBe(4);
    const first = smi.rounds;
    await until(() => smi.rounds >= first + 2);
    expect(smi.restarts).toBe(0);
    await until(() => smi.version !== null);
    expect(smi.version).toEqual({
      nvidiaSmiVersion: '590.48.01',
      driverVersion: '590.48.01',
      cudaVersion: '13.1',
    });
  });

  it('idle state of another capture (H200 MIG: utilization [N/A] → null)', async () => {
    const smi = fake({
      FAKE_NVIDIA_SMI_CAPTURE: 'linux-x86_64__nvidia-h200-mig__590.48.01.txt',
      FAKE_NVIDIA_SMI_STATE: 'idle',
    });
    await smi.start();
    await smi.ready(5_000);
    const gpu = smi.gpuParts().gpus?.[0];
    expect(gpu).toMatchObject({
      name: 'NVIDIA H200',
      utilizationGpuPercent: null,
      migModeCurrent: true,
      memoryUsedMiB: 55,
    });
  });

  it('hang: GPUs go stale, the child is killed and restarted', async () => {
    const smi = fake({ FAKE_NVIDIA_SMI_MODE: 'hang' }, { hangTimeoutMs: 500, staleAfterMs: 400 });
    await smi.start();
    await until(() => smi.restarts >= 1);
    const parts = smi.gpuParts();
    expect(parts.gpuCollector).toBe('stale');
    expect(parts.gpuError).toMatch(/no output/);
  });

  it('hang after rounds: the last known GPUs are reported stale with the reason', async () => {
    const smi = fake(
      { FAKE_NVIDIA_SMI_MODE: 'hang-after=2', FAKE_NVIDIA_SMI_GPUS: '2' },
      { hangTimeoutMs: 800, staleAfterMs: 500 },
    );
    await smi.start();
    await smi.ready(5_000);
    expect(smi.gpuParts().gpuCollector).toBe('ok');
    await until(() => smi.gpuParts().gpuCollector === 'stale');
    const parts = smi.gpuParts();
    expect(parts.gpus).toHaveLength(2);
    expect(parts.gpus?.every((g) => g.state === 'stale' && typeof g.error === 'string')).toBe(true);
    await until(() => smi.restarts >= 1);
  });

  it('fail: error state with nvidia-smi’s message, retried with backoff', async () => {
    const smi = fake({ FAKE_NVIDIA_SMI_MODE: 'fail' });
    await smi.start();
    await smi.ready(5_000);
    const parts = smi.gpuParts();
    expect(parts.gpuCollector).toBe('error');
    expect(parts.gpuError).toContain(
      'Unable to determine the device handle for GPU0000:01:00.0: Unknown Error',
    );
    await until(() => smi.restarts >= 2);
  });

  it('die mid-run (exit 15 with the device-handle message): error, restart with backoff, recovery', async () => {
    const smi = fake({ FAKE_NVIDIA_SMI_MODE: 'die-after=2' });
    const states = new Set<string>();
    await smi.start();
    await smi.ready(5_000);
    await until(() => {
      states.add(smi.gpuParts().gpuCollector ?? '');
      return smi.restarts >= 2 && smi.gpuParts().gpuCollector === 'ok';
    }, 8_000);
    expect(states).toContain('error');
    expect(smi.discoveries).toBeGreaterThanOrEqual(3); // fields re-discovered before every restart
  });

  it('killed loop child: GPUs reported error with the exit reason, restarted', async () => {
    const smi = fake({ FAKE_NVIDIA_SMI_GPUS: '2' }, { restartInitialMs: 300 });
    await smi.start();
    await smi.ready(5_000);
    const pid = smi.childPid as number;
    process.kill(pid, 'SIGKILL');
    await until(() => smi.gpuParts().gpuCollector === 'error');
    const parts = smi.gpuParts();
    expect(parts.gpuError).toMatch(/signal SIGKILL/);
    expect(parts.gpus?.map((g) => g.state)).toEqual(['error', 'error']);
    await until(() => smi.gpuParts().gpuCollector === 'ok' && smi.childPid !== pid);
  });

  it('driver change: after a restart the version and the field list are discovered again', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    const smi = fake({}, { env });
    await smi.start();
    await smi.ready(5_000);
    expect(smi.version).toMatchObject({ driverVersion: '590.48.01', cudaVersion: '13.1' });
    expect(smi.gpuParts().gpus?.[0]).toMatchObject({ cudaVersion: '13.1', driverVersion: '590.48.01' });
    env.FAKE_NVIDIA_SMI_CAPTURE = 'linux-x86_64__nvidia-l40s__595.80.txt';
    process.kill(smi.childPid as number, 'SIGKILL');
    await until(() => smi.gpuParts().gpus?.[0]?.name === 'NVIDIA L40S');
    expect(smi.version?.driverVersion).toBe('595.80');
    expect(smi.discoveries).toBe(2);
    expect(smi.gpuParts().gpus?.[0]).toMatchObject({ driverVersion: '595.80', cudaVersion: '13.2' });
  });

  it('MIG (H200): mode, the 5 MIG devices with profile, GI/CI ids and memory; utilization unknown, not 0', async () => {
    const smi = fake({ FAKE_NVIDIA_SMI_CAPTURE: 'linux-x86_64__nvidia-h200-mig__590.48.01.txt' });
    await smi.start();
    await smi.ready(5_000);
    const gpu = smi.gpuParts().gpus?.[0];
    expect(gpu?.migModeCurrent).toBe(true);
    expect(gpu?.utilizationGpuPercent).toBeNull();
    expect(gpu?.migDevices).toHaveLength(5);
    expect(gpu?.migDevices?.[0]).toEqual({
      index: 0,
      uuid: 'MIG-00000000-0000-0000-0000-000000000000',
      profile: '1c.3g.71gb',
      gpuInstanceId: 2,
      computeInstanceId: 0,
      memoryTotalMiB: 71424,
      memoryUsedMiB: 16925,
    });
    expect(gpu?.migDevices?.map((d) => d.profile)).toEqual([
      '1c.3g.71gb',
      '2c.3g.71gb',
      '2g.35gb',
      '1g.18gb',
      '1g.18gb',
    ]);
    expect(gpu?.migDevices?.map((d) => d.gpuInstanceId)).toEqual([2, 2, 3, 9, 10]);
  });

  it('missing binary: absent, zero GPUs, no processes', async () => {
    const smi = fake({}, { nvidiaSmi: '/nonexistent/nvidia-smi' });
    await smi.start();
    expect(smi.gpuParts()).toEqual({ gpuCollector: 'absent', gpuError: null, gpus: [] });
    const procs = createNvidiaSmiProcessCollector(smi);
    expect(await procs.collect()).toEqual({ processes: [], processesMode: 'full' });
  });

  it('processes: compute apps enriched from /proc (real pid → user, cmdline)', async () => {
    const smi = fake({
      FAKE_NVIDIA_SMI_APPS: JSON.stringify([
        { pid: process.pid, process_name: 'node', used_gpu_memory: 1234 },
        { pid: 999_999_9, process_name: 'gone', used_gpu_memory: null },
      ]),
    });
    await smi.start();
    await smi.ready(5_000);
    // The fake nvidia-smi is a Node script: each --query-compute-apps spawns a Node process, which
    // on a loaded 2-core machine can take longer than the default timeout (min(interval, 5 s), at
    // least 500 ms, sized for the real binary). This test is about the /proc enrichment, not that.
    const { processes } = await createNvidiaSmiProcessCollector(smi, { timeoutMs: 10_000 }).collect();
    expect(processes).toHaveLength(2);
    for (const p of processes ?? []) GpuProcessSchema.parse(p);
    const me = processes?.[0];
    expect(me).toMatchObject({
      pid: process.pid,
      usedMemoryMiB: 1234,
      name: 'node',
      uid: process.getuid?.(),
    });
    expect(me?.cmdline).toContain('node');
    expect(typeof me?.user).toBe('string');
    expect(me?.startedAt).toBeGreaterThan(Date.now() - 24 * 3600_000 * 365);
    expect(processes?.[1]).toMatchObject({ usedMemoryMiB: null, cmdline: null, user: null, uid: null });
  });
});
