/**
 * The write buffer's disk spool against a real influxd: stopped for a while with samples flowing,
 * then restarted on the same port. Not skipped when influxd is missing: it must fail there (the
 * test command installs influxd).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InfluxStore } from '../src/storage/influx-store.ts';
import { freePort, startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import { connectAgent, onCleanup, sample, startServer, tempDir, waitFor } from './helpers.ts';

describe('write spool during an influxd outage (real influxd)', () => {
  it('spools while influxd is down, drains in order after the restart: every point exactly once', async () => {
    const influxDir = await tempDir('gpupulse-influxd-');
    const port = await freePort();
    let influxd = await startManagedInfluxd({ dataDir: influxDir, httpPort: port });
    onCleanup(() => influxd.stop());
    const store = new InfluxStore({
      url: influxd.url,
      database: 'spool_test',
      kind: 'managed-influxdb',
      timeoutMs: 1000,
    });
    await store.init();
    const dataDir = await tempDir('gpupulse-data-');
    const server = await startServer({
      store,
      config: {
        dataDir,
        writeBuffer: {
          batchSize: 300,
          flushIntervalMs: 100,
          maxPoints: 100_000,
          initialBackoffMs: 100,
          maxBackoffMs: 400,
        },
        // The pump below sends up to 100 reports/s from one node, past the default per-node report
        // limit (50/s, burst 100; agent-auth.ts): raised here so only storage can refuse a report.
        agentLimits: { reportsPerNode: { burst: 1000, perSecond: 1000 } },
      },
    });
    expect(server.spool?.dir).toBe(join(dataDir, 'spool'));
    const agent = await connectAgent(server, { node: 'spool-node' });

    // One sample (2 GPUs + host = 3 points) every 10 ms, each acked.
    const t0 = Date.now() - 60_000;
    let seq = 0;
    let acked = 0;
    /** Codes of refused reports (none expected: the spool is far from its bound). */
    const refused: string[] = [];
    let sending = true;
    const pump = (async () => {
      while (sending) {
        const s = sample(seq, t0 + seq);
        seq++;
        const res = await agent.timeout(2000).emitWithAck('samples:report', { samples: [s] });
        if (res.ok) acked++;
        else refused.push(res.error?.code ?? 'no code');
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    await waitFor(
      () => acked >= 50 && server.buffer.stats.pointsWritten > 0,
      5000,
      'writes before the outage',
    );
    await influxd.stop();
    const before = acked;
    let maxSpooled = 0;
    await waitFor(
      () => {
        maxSpooled = Math.max(maxSpooled, server.buffer.spooled);
        return acked - before >= 150 && maxSpooled > 0;
      },
      10_000,
      'samples acked during the outage, spool growing',
    );
    const spooledDuringOutage = server.spool!.stats.bytes;
    expect(spooledDuringOutage).toBeGreaterThan(0);
    expect(server.store.info().ok).toBe(false);

    influxd = await startManagedInfluxd({ dataDir: influxDir, httpPort: port });
    await waitFor(() => acked - before >= 200, 10_000, 'more samples after the restart');
    sending = false;
    await pump;
    expect(refused).toEqual([]);
    await waitFor(
      () => server.buffer.spooled === 0 && server.buffer.buffered === 0,
      20_000,
      'spool drained and buffer empty',
    );
    expect(server.spool!.stats).toMatchObject({ records: 0, points: 0, segments: 0 });
    expect(server.buffer.stats.pointsDroppedOverflow + server.buffer.stats.pointsRejected).toBe(0);

    const gpus = await store.query(`SELECT count(utilization_gpu) FROM nvidia_smi WHERE host = 'spool-node'`);
    expect(gpus.series[0]!.values[0]![1]).toBe(acked * 2);
    const hosts = await store.query(`SELECT count(cpu_percent) FROM gpupulse_host WHERE host = 'spool-node'`);
    expect(hosts.series[0]!.values[0]![1]).toBe(acked);
    // Every sample made it, exactly once (timestamps t0 + seq).
    const times = await store.query(`SELECT cpu_percent FROM gpupulse_host WHERE host = 'spool-node'`);
    expect(acked).toBe(seq);
    expect(times.series[0]!.values.map((v) => v[0])).toEqual(Array.from({ length: seq }, (_, i) => t0 + i));

    // /metrics shows the spool figures.
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const spooledTotal = Number(/^gpupulse_storage_points_spooled_total (\d+)/m.exec(text)?.[1]);
    expect(spooledTotal).toBeGreaterThan(0);
    expect(text).toMatch(/^gpupulse_spool_bytes 0$/m);
  }, 60_000);
});
