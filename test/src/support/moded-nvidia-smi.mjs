#!/usr/bin/env node
// A stand-in nvidia-smi whose behaviour a test changes while the agent runs: it runs the fake
// nvidia-smi (agent/testdata/fake-nvidia-smi) and follows the mode written in the file named by
// FAKE_NVIDIA_SMI_MODE_FILE, re-read every 100 ms:
//   ok    pass the fake's output through;
//   hang  say nothing more and never exit (a hung driver), also for a new invocation;
//   fail  print nvidia-smi's "Unable to determine the device handle" error and exit 15.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const fake = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../agent/testdata/fake-nvidia-smi/fake-nvidia-smi.mjs',
);
const modeFile = process.env.FAKE_NVIDIA_SMI_MODE_FILE;
const mode = () => {
  try {
    return readFileSync(modeFile, 'utf8').trim() || 'ok';
  } catch {
    return 'ok';
  }
};
const FAIL = 'Unable to determine the device handle for GPU0000:01:00.0: Unknown Error';
const helpQuery = process.argv.some((a) => a.startsWith('--help-query'));

let current = helpQuery ? 'ok' : mode();
if (current === 'fail') {
  process.stdout.write(`${FAIL}\n`);
  process.exit(15);
}
if (current === 'hang') setInterval(() => {}, 1 << 30);
else {
  const child = spawn(process.execPath, [fake, ...process.argv.slice(2)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FAKE_NVIDIA_SMI_MODE: 'ok' },
  });
  child.stdout.on('data', (b) => {
    if (current === 'ok') process.stdout.write(b);
  });
  child.on('exit', (code) => {
    if (current === 'ok') process.exit(code ?? 0);
  });
  if (!helpQuery)
    setInterval(() => {
      const m = mode();
      if (m === current) return;
      current = m;
      if (m === 'fail') {
        child.kill('SIGKILL');
        process.stdout.write(`${FAIL}\n`);
        process.exit(15);
      }
      // hang: keep running, print nothing; ok again: the agent has restarted us by then
    }, 100);
  process.on('SIGTERM', () => {
    child.kill('SIGKILL');
    process.exit(143);
  });
}
