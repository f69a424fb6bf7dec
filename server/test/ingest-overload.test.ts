/**
 * Sustained overload (the 300 × 8 soak that wedged at minute 13): storage down, the spool at its
 * bound, agents resending 500-sample batches in a tight loop without waiting for the retry hint.
 * The server refuses them before decoding (replays) or validating (other batches), so it stays
 * responsive: health and /metrics answer within 1 s throughout, the refusals are counted, the
 * validated-samples counter stays flat while refusing, and live single samples still move the
 * live view. Plus the pieces: validation in slices, a retry hint that grows with the backlog.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { AGENT_NAMESPACE, PROTOCOL_VERSION, type StorageInfo } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { checkReport, ReportCheck, startCheck } from '../src/ingest/validate.ts';
import {
  jsonEncoding,
  type MetricPoint,
  type MetricStore,
  StoreWriteError,
} from '../src/storage/metric-store.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import {
  connectAgent,
  gpu,
  onCleanup,
  PointStoreDouble,
  report,
  sample,
  startServer,
  TOKEN,
  tempDir,
  waitFor,
} from './helpers.ts';

/** InfluxDB that refuses every write (down): what is taken goes to the spool, which fills up. */
class DownStore extends PointStoreDouble implements MetricStore {
  readonly kind = 'influxdb' as const;
  async write(): Promise<void> {
    throw new StoreWriteError('connect ECONNREFUSED 127.0.0.1:8086', { retryable: true });
  }
  async query() {
    return { series: [] };
  }
  async ping() {
    return false;
  }
  info(): StorageInfo {
    return { kind: 'influxdb', ok: false, warning: 'unreachable' } as StorageInfo;
  }
  async close() {}
}

/**
 * The flooding agents, on a thread of their own (as agents are on machines of their own): real
 * Socket.IO clients, each resending its pre-encoded batch as soon as the previous one is answered
 * (no client-side JSON work per resend, and no retry hint honoured). Answers come back on `stop`.
 */
const FLOOD_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const { io } = require(w.ioPath);
const sockets = w.nodes.map((node) => io(w.url, {
  auth: { token: w.token, node, protocolVersion: w.protocolVersion, intervalMs: 1000 },
  transports: ['websocket'], reconnection: false, forceNew: true,
}));
let flooding = true;
const answers = [];
const send = (s, id, frame) => new Promise((resolve) => {
  s.acks[id] = resolve;
  s.io.engine.write(frame);
});
Promise.all(sockets.map((s) => new Promise((ok, fail) => {
  s.once('connect', ok);
  s.once('connect_error', fail);
}))).then(() => {
  parentPort.postMessage({ connected: true });
  const loops = sockets.map(async (s, i) => {
    const body = i === 0 ? w.plainBody : w.replayBody;
    for (let id = 1000000; flooding && s.connected; id++) {
      const a = await send(s, id, '2' + w.nsp + ',' + id + '["samples:report",' + body + ']');
      answers.push({ at: Date.now(), a });
    }
  });
  parentPort.on('message', async () => {
    flooding = false;
    await Promise.all(loops);
    for (const s of sockets) s.disconnect();
    parentPort.postMessage({ answers });
  });
}, (err) => parentPort.postMessage({ error: String(err) }));
`;

/** One value of a /metrics series (0 when absent). */
function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Agents resending in a tight loop. */
const FLOODS = 4;

describe('ingest under sustained overload', () => {
  it('refuses resent batches before decoding/validating: health answers within 1 s, refusals counted, validation flat, live view fresh', async () => {
    const server = await startServer({
      store: new DownStore(),
      config: {
        dataDir: await tempDir('gpupulse-overload-'),
        spool: { enabled: true, maxBytes: 4 * 1024 ** 2 },
        writeBuffer: {
          batchSize: 1000,
          flushIntervalMs: 50,
          maxPoints: 20_000,
          spillPoints: 2000,
          initialBackoffMs: 50,
          maxBackoffMs: 200,
          retryAfterMs: 500,
          maxRetryAfterMs: 3000,
        },
        // only storage may refuse: the tight loops below are far past the per-node report limit
        agentLimits: { reportsPerNode: { burst: 1_000_000, perSecond: 1_000_000 } },
      },
    });
    const live = await connectAgent(server, { node: 'live-node' });
    // 500 samples × 8 GPUs (~1.4 MB): replays as the agent sends them, and (one node) a plain
    // batch as older agents and the soak load send them.
    const t0 = Date.now() - 600_000;
    const samples = Array.from({ length: 500 }, (_, i) =>
      sample(i + 1, t0 + i * 1000, { gpus: Array.from({ length: 8 }, (_, g) => gpu(g)) }),
    );
    const floods = new Worker(FLOOD_WORKER, {
      eval: true,
      workerData: {
        ioPath: createRequire(import.meta.url).resolve('socket.io-client'),
        url: server.url + AGENT_NAMESPACE,
        nsp: AGENT_NAMESPACE,
        token: TOKEN,
        protocolVersion: PROTOCOL_VERSION,
        nodes: Array.from({ length: FLOODS }, (_, i) => `flood-${i}`),
        replayBody: JSON.stringify({ samples, replay: true }),
        plainBody: JSON.stringify({ samples }),
      },
    });
    onCleanup(async () => {
      await floods.terminate();
    });
    const fromFloods = (): Promise<{
      connected?: true;
      error?: string;
      answers?: { at: number; a: unknown }[];
    }> => new Promise((resolve) => floods.once('message', resolve));
    const ready = await fromFloods();
    expect(ready.error).toBeUndefined();

    // Health latency, every 100 ms for the whole run.
    let polling = true;
    const healthMs: number[] = [];
    const poller = (async () => {
      while (polling) {
        const started = performance.now();
        const res = await fetch(`${server.url}/api/v1/health`, { signal: AbortSignal.timeout(10_000) });
        await res.json();
        healthMs.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    onCleanup(() => {
      polling = false;
    });
    const scrape = async () => {
      const started = performance.now();
      const text = await (
        await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(10_000) })
      ).text();
      return { text, ms: performance.now() - started };
    };

    // Live samples, one report of one sample every 100 ms.
    let liveSent = 0;
    let lastLiveTs = 0;
    let liveSeq = 1;
    const liveLoop = async (until: () => boolean) => {
      while (!until()) {
        lastLiveTs = Date.now();
        const a = await report(live, { samples: [sample(liveSeq++, lastLiveTs)] });
        expect(a.ok || a.error.code === 'UNAVAILABLE').toBe(true);
        liveSent++;
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    // The first batches fill the spool (storage is down); then it refuses.
    await waitFor(() => server.buffer.stats.refused > 0, 30_000, 'the first refusal');
    // … and the batches taken before are through validation (nothing validated for 500 ms)
    const validatedNow = async () =>
      metric(await server.registry.metrics(), 'gpupulse_samples_validated_total');
    let last = await validatedNow();
    await waitFor(
      async () => {
        await new Promise((r) => setTimeout(r, 500));
        const now = await validatedNow();
        const settled = now === last;
        last = now;
        return settled;
      },
      30_000,
      'validation to settle',
    );
    const before = await scrape();
    const liveBefore = liveSent;
    const windowStart = Date.now();
    const windowEnd = windowStart + 4000;
    await liveLoop(() => Date.now() >= windowEnd);
    const after = await scrape();
    const liveInWindow = liveSent - liveBefore;
    const stopped = fromFloods();
    floods.postMessage('stop');
    const answers = ((await stopped).answers ?? [])
      .filter(({ at }) => at >= windowStart && at <= windowEnd)
      .map(({ a }) => a);
    polling = false;
    await poller;

    const delta = (series: string) => metric(after.text, series) - metric(before.text, series);
    const validated = delta('gpupulse_samples_validated_total');
    const shedFrame = delta('gpupulse_sample_reports_shed_total{stage="frame"}');
    const shedEnvelope = delta('gpupulse_sample_reports_shed_total{stage="envelope"}');
    const refused = delta('gpupulse_rejected_payloads_total{event="samples:report",reason="spool_full"}');
    const maxHealth = Math.max(...healthMs);
    console.log(
      `overload: ${answers.length} batches answered in 4 s (${shedFrame} not decoded, ${shedEnvelope} not validated), ` +
        `${validated} samples validated (${liveInWindow} live reports), health max ${maxHealth.toFixed(0)} ms ` +
        `over ${healthMs.length} polls, /metrics ${after.ms.toFixed(0)} ms`,
    );

    // responsive throughout
    expect(healthMs.length).toBeGreaterThan(10);
    expect(maxHealth).toBeLessThan(1000);
    expect(before.ms).toBeLessThan(1000);
    expect(after.ms).toBeLessThan(1000);
    // every resent batch refused UNAVAILABLE with a retry hint, and counted
    expect(answers.length).toBeGreaterThanOrEqual(40);
    for (const a of answers) {
      expect(a).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
      expect((a as { error: { retryAfterMs: number } }).error.retryAfterMs).toBeGreaterThanOrEqual(
        0.75 * 500,
      );
    }
    // replays (3 of the 4 nodes) not even decoded; the plain batches decoded, not validated
    expect(shedFrame).toBeGreaterThan(shedEnvelope);
    expect(shedEnvelope).toBeGreaterThan(0);
    expect(refused).toBeGreaterThanOrEqual(shedFrame + shedEnvelope);
    // refused batches cost no validation: only the live reports' single samples were validated
    expect(validated).toBeLessThanOrEqual(liveInWindow + 1);
    // the live view follows the (refused) live samples; nothing acked was dropped
    expect(server.fleet.view('live-node')?.lastSampleTs).toBe(lastLiveTs);
    expect(metric(after.text, 'gpupulse_storage_points_dropped_total{reason="spool_full"}')).toBe(0);
  }, 90_000);

  it('validates a 500-sample batch in slices with the same result as at once', () => {
    const now = Date.now();
    const raw = {
      samples: Array.from({ length: 500 }, (_, i) =>
        i === 7 ? { seq: 8, ts: now } : sample(i + 1, now - 1000 + i, { gpus: [gpu(0), gpu(1), gpu(2)] }),
      ),
    };
    const check = startCheck(raw, null, now);
    expect(check).toBeInstanceOf(ReportCheck);
    let slices = 1;
    let result = (check as ReportCheck).step(0);
    while (result === null) {
      slices++;
      result = (check as ReportCheck).step(0);
    }
    // a zero budget checks one sample per slice
    expect(slices).toBe(500);
    expect(result).toEqual(checkReport(raw, null, now));
    expect(result.accepted).toHaveLength(499);
    expect(result.rejected[0]).toMatchObject({ seq: 8, index: 7, code: 'VALIDATION' });
  });

  it('the retry hint grows with the backlog at the measured write rate, also while writes fail', async () => {
    let gate: Promise<void> | null = null;
    let open = () => {};
    let failing = false;
    const write = async () => {
      if (failing) throw new StoreWriteError('down', { retryable: true });
      await new Promise((r) => setTimeout(r, 20));
      if (gate) await gate;
    };
    const store: MetricStore = {
      kind: 'influxdb',
      encode: jsonEncoding.encode,
      write,
      writeEncoded: write,
      async query() {
        return { series: [] };
      },
      async ping() {
        return true;
      },
      info: () => ({ kind: 'influxdb', ok: true, warning: null }) as StorageInfo,
      async close() {},
    };
    const b = new WriteBuffer({
      store,
      batchSize: 1000,
      flushIntervalMs: 10,
      maxPoints: 1_000_000,
      retryAfterMs: 100,
      maxRetryAfterMs: 60_000,
      initialBackoffMs: 10_000,
      random: () => 0.5,
    });
    b.start();
    onCleanup(() => b.close(0));
    const pts = (n: number): MetricPoint[] =>
      Array.from({ length: n }, (_, i) => ({ measurement: 'm', tags: {}, ints: { v: i }, ts: i }));
    // no write rate measured yet: the shortest hint
    b.enqueue(pts(50_000));
    gate = new Promise<void>((r) => {
      open = r;
    });
    // (the first write hangs at the gate: still nothing measured)
    expect(b.retryHint()).toBe(100);
    open();
    gate = null;
    // writes of 1,000 points in ~20 ms each: ~50,000 points/s
    await waitFor(() => b.buffered === 0, 20_000);
    gate = new Promise<void>((r) => {
      open = r;
    });
    b.enqueue(pts(20_000));
    const small = b.retryHint();
    b.enqueue(pts(100_000));
    const large = b.retryHint();
    expect(small).toBeGreaterThan(100);
    expect(large).toBeGreaterThan(small * 3);
    expect(large).toBeLessThanOrEqual(60_000);
    // storage fails: the hint keeps following the backlog at the last rate measured
    failing = true;
    open();
    gate = null;
    await waitFor(() => b.stats.consecutiveFailures > 0, 5000);
    expect(b.retryHint()).toBeGreaterThanOrEqual(large * 0.9);
  }, 30_000);
});
