// The CLI as users run it: node bin/gpupulse-agent.mjs …
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SampleSchema } from '@gpupulse/protocol';
import { Server } from 'socket.io';
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
    // --interval 5000: the compute-apps query times out after min(interval, 5 s); the fake
    // nvidia-smi is a Node script (~0.45 s to spawn here, more on a loaded machine), not the binary.
    const { code, stdout } = await run(
      ['--once', '--nvidia-smi', FAKE_NVIDIA_SMI_PATH, '--interval', '5000'],
      {
        FAKE_NVIDIA_SMI_GPUS: '2',
      },
    );
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
      '--spool-max-bytes',
      '--spool-max-age',
      '--project-env',
      '--kmsg',
      '--config',
      '--once',
      '--check',
      '--ca',
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

  it('--check without a server: collectors, nvidia-smi version and GPUs listed, exit 0', async () => {
    // --interval 5000: as in --once above, room for the fake nvidia-smi's compute-apps query
    const { code, stdout } = await run(
      ['--check', '--nvidia-smi', FAKE_NVIDIA_SMI_PATH, '--kmsg', 'off', '--interval', '5000'],
      { FAKE_NVIDIA_SMI_GPUS: '2' },
    );
    expect(stdout).toMatch(/^ok {4}nvidia-smi: version 590\.48\.01, driver 590\.48\.01, CUDA 13\.1$/m);
    expect(stdout).toMatch(/^ok {4}GPUs: 2 found/m);
    // the one-off inventory through systeminformation: OS, kernel, CPU, memory of this machine
    expect(stdout).toMatch(
      /^ok {4}inventory: .+ \(kernel .+\), .+, CPU .+ \(\d+ cores, \d+ threads\), \d+\.\d GiB memory$/m,
    );
    expect(stdout).toMatch(/^ok {4}collector host: works/m);
    expect(stdout).toMatch(/^ok {4}collector nvidia-smi-processes: works .*3 GPU process/m);
    expect(stdout).toMatch(/^skip {2}server: not configured/m);
    expect(code).toBe(0);
  });

  it('--check with a failing nvidia-smi and an unreachable server: exit 1, says why', async () => {
    const { code, stdout } = await run(
      ['--check', '--nvidia-smi', FAKE_NVIDIA_SMI_PATH, '--server', 'http://127.0.0.1:1', '--token', 't'],
      { FAKE_NVIDIA_SMI_MODE: 'fail' },
    );
    expect(code).toBe(1);
    expect(stdout).toMatch(/^FAIL {2}nvidia-smi: error: .*Unable to determine the device handle/m);
    expect(stdout).toMatch(/^FAIL {2}server: http:\/\/127\.0\.0\.1:1: unreachable/m);
  });

  it('--check with two servers: one line per server, in failover order', async () => {
    const http = createServer();
    const io = new Server(http);
    io.of('/agent').use((socket, next) => {
      const auth = socket.handshake.auth as { token?: string };
      if (auth.token === 'good') return next();
      const err = new Error('invalid agent token') as Error & { data?: unknown };
      err.data = { code: 'UNAUTHORIZED', message: 'invalid agent token' };
      next(err);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const up = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const args = ['--check', '--nvidia-smi', FAKE_NVIDIA_SMI_PATH, '--kmsg', 'off', '--server'];
      const ok = await run([...args, `http://127.0.0.1:1,${up}`, '--token', 'good'], {
        FAKE_NVIDIA_SMI_GPUS: '1',
      });
      expect(ok.stdout).toMatch(/^FAIL {2}server 1\/2: http:\/\/127\.0\.0\.1:1: unreachable/m);
      expect(ok.stdout).toContain(`ok    server 2/2: ${up} reachable, token accepted`);
      expect(ok.code).toBe(1);
      const refused = await run([...args, up, '--token', 'bad'], { FAKE_NVIDIA_SMI_GPUS: '1' });
      expect(refused.stdout).toContain(`FAIL  server: ${up}: UNAUTHORIZED: invalid agent token`);
      expect(refused.code).toBe(1);
    } finally {
      await new Promise<void>((r) => io.close(() => r()));
    }
  });

  it('--ca with an unreadable file or no certificate in it: exit 2 naming --ca', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-cli-ca-'));
    try {
      const missing = await run(['--server', 'https://x:1', '--token', 't', '--ca', join(dir, 'none.pem')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/--ca \(GPUPULSE_CA\): cannot read .*none\.pem/);
      writeFileSync(join(dir, 'empty.pem'), 'not a certificate\n');
      const empty = await run(['--server', 'https://x:1', '--token', 't'], {
        GPUPULSE_CA: join(dir, 'empty.pem'),
      });
      expect(empty.code).toBe(2);
      expect(empty.stderr).toMatch(/--ca \(GPUPULSE_CA\): .*empty\.pem holds no PEM certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SIGTERM: exits 0 within 5 s even with the server unreachable (samples stay in the spool)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpupulse-cli-spool-'));
    const child = spawn(
      process.execPath,
      [
        AGENT_BIN_PATH,
        '--server',
        'http://127.0.0.1:1',
        '--token',
        't',
        '--interval',
        '200',
        '--spool-dir',
        dir,
        '--nvidia-smi',
        FAKE_NVIDIA_SMI_PATH,
        '--kmsg',
        'off',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const t0 = Date.now();
    // Started, and at least one sample is in the spool (on a loaded machine the first sample can
    // take longer than a fixed wait).
    const spooled = () => readdirSync(dir).some((f) => f.endsWith('.seg') && statSync(join(dir, f)).size > 0);
    while (!/"msg":"gpupulse-agent starting"/.test(err) || Date.now() - t0 < 1_000 || !spooled()) {
      if (Date.now() - t0 > 20_000) throw new Error(`agent did not spool a sample: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const sent = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - sent).toBeLessThan(5_000);
    const stopped = err.split('\n').find((l) => l.includes('"msg":"stopped"'));
    expect(JSON.parse(stopped ?? '{}').unsent).toBeGreaterThan(0);
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});
