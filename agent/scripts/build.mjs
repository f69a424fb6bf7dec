#!/usr/bin/env node
// Bundles the agent into one plain-JavaScript file for production (`node dist/gpupulse-agent.mjs`):
// no TypeScript loader at run time, which saves ~40 MB of RSS (tsx's loader thread) on every node.
// Development, tests and `pnpm agent` keep running the TypeScript sources through bin/ + tsx.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [resolve(root, 'src/main.ts')],
  outfile: resolve(root, 'dist/gpupulse-agent.mjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  // CommonJS dependencies (pino, systeminformation …) call require(): give the bundle one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __gpupulseCreateRequire } from 'node:module';\nconst require = __gpupulseCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
console.log('built dist/gpupulse-agent.mjs');
