// The soak in CI: the same code as `pnpm soak` (test/bench/soak.ts) for 4 minutes — server + real
// influxd + simulated nodes at 1 Hz + the wall in Chromium. Pass: the page's JS heap ends within
// 10 % of its level after a 2-minute warm-up, server RSS within 25 % (RSS_BOUND_PCT below), and
// InfluxDB holds exactly what was acked. (After 1 minute the server's resident set is still growing into its working size —
// 265 → 318 MiB in the first minute, ~+10 % in the next two in one CI run — so a 1-minute
// reference measured warm-up, not a leak; the 60-minute run's warm-up is 10 minutes.) CI uses 200 nodes × 8 GPUs: on the 2-core CI machine (server, influxd, the load and
// Chromium sharing it) 1,000 nodes need minutes just to connect. GPUPULSE_SOAK_NODES /
// GPUPULSE_SOAK_MINUTES change the size; the 60-minute run with 1,000 nodes × 8 GPUs is in
// docs/reliability.md.
import { describe, expect, it } from 'vitest';
import { runSoak } from '../bench/soak.ts';

const MINUTES = Number(process.env.GPUPULSE_SOAK_MINUTES ?? 4);
const NODES = Number(process.env.GPUPULSE_SOAK_NODES ?? 200);
const GPUS = 8;
/**
 * The soak's criterion is 10 % after a 10-minute warm-up (`pnpm soak`, docs/reliability.md). A run
 * of a few minutes still sees the server's resident set settle — CI runs measured +5 % to +11 % in
 * minutes 1–4 while the live heap stays flat (heap snapshots in docs/reliability.md) — so short
 * runs allow 25 %: enough to catch a leak of any size that matters in minutes (a kilobyte kept per
 * report is +47 MiB here), not the settling. Page heap and stored = acked keep their exact bounds.
 */
const RSS_BOUND_PCT = MINUTES >= 30 ? 10 : 25;

describe('soak (CI length)', () => {
  it(
    `${MINUTES} min, ${NODES} nodes × ${GPUS} GPUs + the wall: RSS within ${RSS_BOUND_PCT} %, page heap within 10 %, stored = acked`,
    async () => {
      const r = await runSoak({
        minutes: MINUTES,
        nodes: NODES,
        gpus: GPUS,
        warmupMinutes: 2,
        readEverySeconds: 10,
        log: (l) => console.info(l),
      });
      expect(r.samples.acked).toBeGreaterThan(NODES * (MINUTES * 60 - 30) * 0.9);
      expect(r.samples.pendingAtEnd).toBe(0);
      expect(r.samples.rejected).toBe(0);
      expect(r.stored.hostPoints).toBe(r.samples.acked);
      expect(r.stored.gpuPoints).toBe(r.samples.acked * GPUS);
      expect(r.droppedByServer).toBe(0);
      expect(
        Math.abs(r.rss.changePct),
        `server RSS ${r.rss.reference} → ${r.rss.end} MiB`,
      ).toBeLessThanOrEqual(RSS_BOUND_PCT);
      expect(
        Math.abs(r.heap.changePct),
        `page heap ${r.heap.reference} → ${r.heap.end} MiB`,
      ).toBeLessThanOrEqual(10);
    },
    (MINUTES + 12) * 60_000,
  );
});
