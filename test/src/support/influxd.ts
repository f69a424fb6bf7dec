import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startManagedInfluxd } from '@gpupulse/server';

export interface TestInfluxd {
  url: string;
  /** Runs InfluxQL through the v1 `/query` endpoint; returns the first statement's series. */
  query(q: string, db?: string): Promise<InfluxSeries[]>;
  stop(): Promise<void>;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** A private, real influxd on free ports with a temp data dir (the server's own manager starts it). */
export async function startInfluxd(): Promise<TestInfluxd> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-influxd-'));
  const influxd = await startManagedInfluxd({ dataDir });
  return {
    url: influxd.url,
    async query(q, db = 'gpupulse') {
      const u = new URL('/query', influxd.url);
      u.searchParams.set('db', db);
      u.searchParams.set('q', q);
      u.searchParams.set('epoch', 'ms');
      const res = await fetch(u, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as {
        results?: { series?: InfluxSeries[]; error?: string }[];
        error?: string;
      };
      if (!res.ok || body.error) throw new Error(`InfluxQL failed (${res.status}): ${body.error ?? ''}`);
      const first = body.results?.[0];
      if (first?.error) throw new Error(`InfluxQL failed: ${first.error}`);
      return first?.series ?? [];
    },
    async stop() {
      await influxd.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Rows of a series as objects keyed by column name. */
export function rows(series: InfluxSeries[]): Record<string, unknown>[] {
  return series.flatMap((s) =>
    s.values.map((v) => ({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) })),
  );
}
