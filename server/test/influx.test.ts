import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attributeUnassigned } from '../src/fleet/attribution.ts';
import { InfluxStore, quoteString } from '../src/storage/influx-store.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import type { MetricPoint } from '../src/storage/metric-store.ts';
import { samplePoints } from '../src/storage/schema.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { onCleanup, sample, tempDir, waitFor } from './helpers.ts';

async function influx(httpPort?: number, dir?: string) {
  const dataDir = dir ?? (await tempDir('gpupulse-influxd-'));
  const managed = await startManagedInfluxd({ dataDir, ...(httpPort ? { httpPort } : {}) });
  onCleanup(() => managed.stop());
  const store = new InfluxStore({
    url: managed.url,
    database: 'gpupulse_test',
    kind: 'managed-influxdb',
    timeoutMs: 2000,
  });
  await store.init();
  return { managed, store, dataDir };
}

// No skip: the test command installs influxd, and a missing one must fail loudly.
describe('InfluxStore against a real influxd', () => {
  it('writes samples and reads them back with InfluxQL; hostile names survive', async () => {
    const { managed, store, dataDir } = await influx();
    const conf = readFileSync(join(dataDir, 'influxd.conf'), 'utf8');
    expect(conf).toContain('reporting-enabled = false');
    expect(conf).toContain('store-enabled = false');
    expect(managed.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const hostile = 'a,b=c "d"';
    const ts = Date.now() - 1000;
    const s = sample(1, ts);
    s.gpus[0]!.name = hostile;
    await store.write(samplePoints(hostile, s, [], attributeUnassigned));
    const q = await store.query(
      `SELECT utilization_gpu, power_draw, "name" FROM nvidia_smi WHERE host = ${quoteString(hostile)} AND "index" = '0'`,
    );
    expect(q.series).toHaveLength(1);
    expect(q.series[0]!.columns).toEqual(['time', 'utilization_gpu', 'power_draw', 'name']);
    expect(q.series[0]!.values).toEqual([[ts, 42, 312.5, hostile]]);
    const host = await store.query('SELECT memory_total FROM gpupulse_host');
    expect(host.series[0]!.values[0]).toEqual([ts, 1081627930624]);
    expect(store.info()).toEqual({ kind: 'managed-influxdb', ok: true, warning: null });
  });

  it('write buffer: retries while influxd is down, drops and counts 4xx', async () => {
    const first = await influx();
    const { store, managed, dataDir } = first;
    const dropped: Record<string, number> = {};
    const buffer = new WriteBuffer({
      store,
      batchSize: 100,
      flushIntervalMs: 50,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
      observer: {
        dropped: (reason, n) => {
          dropped[reason] = (dropped[reason] ?? 0) + n;
        },
      },
    });
    buffer.start();
    onCleanup(() => buffer.close(1000));

    // 4xx: a field type conflict (utilization_gpu is an integer field) → dropped, counted, not retried.
    const t0 = Date.now() - 10_000;
    const good: MetricPoint = {
      measurement: 'nvidia_smi',
      tags: { host: 'h', index: '0' },
      ints: { utilization_gpu: 1 },
      ts: t0,
    };
    const conflict: MetricPoint = {
      measurement: 'nvidia_smi',
      tags: { host: 'h', index: '1' },
      floats: { utilization_gpu: 1.5 },
      ts: t0,
    };
    buffer.enqueue([good]);
    await waitFor(() => buffer.stats.pointsWritten === 1, 5000, 'first write');
    buffer.enqueue([conflict]);
    await waitFor(() => buffer.stats.batchesRejected === 1, 5000, 'rejected batch');
    expect(buffer.stats.pointsRejected).toBe(1);
    expect(dropped.rejected).toBe(1);
    expect(buffer.buffered).toBe(0);

    // influxd down → retried with backoff, nothing lost; back up on the same port → written.
    await managed.stop();
    const p: MetricPoint = {
      measurement: 'nvidia_smi',
      tags: { host: 'h', index: '2' },
      ints: { utilization_gpu: 7 },
      ts: t0 + 1,
    };
    buffer.enqueue([p]);
    await waitFor(() => buffer.stats.batchesRetried >= 2, 5000, 'retries');
    expect(buffer.buffered).toBe(1);
    expect(store.info().ok).toBe(false);
    const again = await startManagedInfluxd({ dataDir, httpPort: managed.port });
    onCleanup(() => again.stop());
    await waitFor(() => buffer.stats.pointsWritten === 2, 8000, 'write after restart');
    const q = await store.query(`SELECT utilization_gpu FROM nvidia_smi WHERE "index" = '2'`);
    expect(q.series[0]!.values).toEqual([[t0 + 1, 7]]);
    expect(store.info().ok).toBe(true);
  });
});
