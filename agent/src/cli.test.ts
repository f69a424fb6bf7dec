// The CLI as users run it: node bin/gpupulse-agent.mjs …
import { execFile } from 'node:child_process';
import { SampleSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { AGENT_BIN_PATH, FAKE_NVIDIA_SMI_PATH } from './index.ts';

function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [AGENT_BIN_PATH, ...args],
      { env: { ...process.env, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('gpupulse-agent CLI', () => {
  it('--once --nvidia-smi <fake>: one sample as JSON on stdout', async () => {
    const { code, stdout } = await run(['--once', '--nvidia-smi', FAKE_NVIDIA_SMI_PATH], {
      FAKE_NVIDIA_SMI_GPUS: '2',
    });
    expect(code).toBe(0);
    const sample = SampleSchema.parse(JSON.parse(stdout));
    expect(sample.gpuCollector).toBe('ok');
    expect(sample.gpus).toHaveLength(2);
    expect(sample.gpus[0]).toMatchObject({ name: 'NVIDIA H100 80GB HBM3', powerDrawWatts: 631.95 });
    expect(sample.host?.memoryTotalBytes).toBeGreaterThan(0);
    expect(sample.processes).toHaveLength(3);
  });

  it('--once without nvidia-smi: absent, zero GPUs, exit 0', async () => {
    const { code, stdout } = await run(['--once'], { GPUPULSE_NVIDIA_SMI: '/nonexistent/nvidia-smi' });
    expect(code).toBe(0);
    const sample = SampleSchema.parse(JSON.parse(stdout));
    expect(sample.gpuCollector).toBe('absent');
    expect(sample.gpus).toEqual([]);
  });

  it('--help lists the flags', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const f of [
      '--server',
      '--token',
      '--node',
      '--interval',
      '--nvidia-smi',
      '--spool-dir',
      '--once',
    ]) {
      expect(stdout).toContain(f);
    }
  });

  it('bad configuration: exit 2 with a clear message', async () => {
    const { code, stderr, stdout } = await run(['--interval', 'fast']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/--interval \(GPUPULSE_INTERVAL_MS\)/);
    expect(stderr).toMatch(/--server \(GPUPULSE_SERVER\): is required unless --once/);
  });
});
