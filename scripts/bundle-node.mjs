// One esbuild setup for the production bundles of the Node programs (agent, server): one
// plain-JavaScript ESM file, no TypeScript loader at run time. Each package's scripts/build.mjs
// passes its own esbuild `build` (esbuild is each package's dev dependency).
import { resolve } from 'node:path';

/**
 * Bundles `entry` (relative to the package `root`) into `outfile`, workspace packages and
 * third-party packages included.
 * @param {typeof import('esbuild').build} build
 * @param {{ root: string, entry: string, outfile: string }} options
 */
export async function bundleNodeProgram(build, { root, entry, outfile }) {
  await build({
    entryPoints: [resolve(root, entry)],
    outfile: resolve(root, outfile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    // CommonJS dependencies (pino, socket.io, prom-client, systeminformation …) call require():
    // give the bundle one.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __gpupulseCreateRequire } from 'node:module';\nconst require = __gpupulseCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  console.log(`built ${outfile}`);
}
