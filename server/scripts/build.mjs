#!/usr/bin/env node
// Bundles the server into one plain-JavaScript file for production (`node dist/gpupulse-server.mjs`):
// no TypeScript loader at run time, which saves tsx's loader thread (~40 MB of RSS) and start-up
// time. Development, tests and `pnpm server` keep running the TypeScript sources through bin/ + tsx.
//
// The workspace packages (@gpupulse/protocol, @gpupulse/node ship .ts sources) and the third-party
// packages are bundled. Paths the server resolves from its own location (`../../web/dist`,
// `../package.json`, socket.io-parser through socket.io's require) hold from dist/ as from src/:
// dist/ is a sibling of src/, so the bundle runs from its place in the checkout (server/dist), next
// to server/node_modules.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { bundleNodeProgram } from '../../scripts/bundle-node.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
await bundleNodeProgram(build, { root, entry: 'src/main.ts', outfile: 'dist/gpupulse-server.mjs' });
