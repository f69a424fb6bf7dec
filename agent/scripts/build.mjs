#!/usr/bin/env node
// Bundles the agent into one plain-JavaScript file for production (`node dist/gpupulse-agent.mjs`):
// no TypeScript loader at run time, which saves ~40 MB of RSS (tsx's loader thread) on every node.
// Development, tests and `pnpm agent` keep running the TypeScript sources through bin/ + tsx.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bundleNodeProgram } from '../../scripts/bundle-node.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
await bundleNodeProgram(build, { root, entry: 'src/main.ts', outfile: 'dist/gpupulse-agent.mjs' });
