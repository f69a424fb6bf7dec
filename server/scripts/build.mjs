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

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [resolve(root, 'src/main.ts')],
  outfile: resolve(root, 'dist/gpupulse-server.mjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  // CommonJS dependencies (pino, socket.io, prom-client …) call require(): give the bundle one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __gpupulseCreateRequire } from 'node:module';\nconst require = __gpupulseCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
console.log('built dist/gpupulse-server.mjs');
