import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const serverBin = resolve(repoRoot, 'server/bin/gpupulse-server.mjs');
export const agentBin = resolve(repoRoot, 'agent/bin/gpupulse-agent.mjs');
export const simBin = resolve(repoRoot, 'agent/bin/gpupulse-sim.mjs');
export const fakeNvidiaSmi = resolve(repoRoot, 'agent/testdata/fake-nvidia-smi/fake-nvidia-smi.mjs');
export const capturesDir = resolve(repoRoot, 'agent/src/collectors/nvidia-smi/testdata');
/** Screenshots and other test output; gitignored. */
export const artifactsDir = resolve(repoRoot, 'test/artifacts');
