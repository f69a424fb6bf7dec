import { defineConfig } from 'vitest/config';

// Cross-package tests start real processes (influxd, server, agents, Chromium):
// one file at a time on a 2-core machine, generous timeouts, no retries (flakes get fixed).
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 60_000,
  },
});
