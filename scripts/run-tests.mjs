#!/usr/bin/env node
// Runs every package's vitest suite one after another (2-core machines: no parallel suites),
// then prints one closing line: "tests: N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const packages = ['protocol', 'node', 'agent', 'server', 'web', 'test'];
const only = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'gpupulse-tests-'));
let passed = 0;
let failed = 0;
let skipped = 0;
const failedPackages = [];
const failedTests = [];

for (const pkg of packages) {
  if (only.length > 0 && !only.includes(pkg)) continue;
  const out = join(dir, `${pkg}.json`);
  console.log(`\n=== @gpupulse/${pkg} ===`);
  const r = spawnSync(
    'pnpm',
    [
      '--filter',
      `@gpupulse/${pkg}`,
      'exec',
      'vitest',
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile=${out}`,
    ],
    { stdio: 'inherit' },
  );
  let counted = false;
  try {
    const report = JSON.parse(readFileSync(out, 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + report.numTodoTests;
    counted = true;
    if (report.numTotalTests === 0) failedPackages.push(`${pkg} (ran no test)`);
    for (const file of report.testResults ?? []) {
      for (const t of file.assertionResults ?? []) {
        if (t.status !== 'failed') continue;
        const where = file.name.slice(file.name.indexOf(`/${pkg}/`) + 1);
        const why = String(t.failureMessages?.[0] ?? '')
          .split('\n')[0]
          .slice(0, 300);
        failedTests.push(`  ${where} > ${t.fullName}\n      ${why}`);
      }
      if ((file.assertionResults ?? []).length === 0 && file.status === 'failed') {
        failedTests.push(
          `  ${file.name}: ${String(file.message ?? '')
            .split('\n')[0]
            .slice(0, 300)}`,
        );
      }
    }
  } catch {
    // no report: the run itself broke (compile error, crash)
  }
  if (r.status !== 0 || !counted) {
    failedPackages.push(pkg);
    if (!counted) failed += 1;
  }
}
rmSync(dir, { recursive: true, force: true });

console.log('');
if (failedTests.length > 0) console.log(`failed tests:\n${failedTests.join('\n')}`);
if (failedPackages.length > 0) console.log(`failing: ${[...new Set(failedPackages)].join(', ')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failedPackages.length > 0 || failed > 0 ? 1 : 0);
