// A real influxd that a fault test can stop (SIGTERM, or SIGSTOP/SIGCONT) and start again on the
// same port and data dir: what the server sees when its database goes away and comes back.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ManagedInfluxd, startManagedInfluxd } from '@gpupulse/server';
import type { InfluxSeries } from './influxd.ts';

export interface RestartableInfluxd {
  url: string;
  query(q: string, db?: string): Promise<InfluxSeries[]>;
  /** Stops the process (data kept). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir. */
  start(): Promise<void>;
  /** Stops it and removes the data dir. */
  destroy(): Promise<void>;
}

export async function startRestartableInfluxd(): Promise<RestartableInfluxd> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-influxd-'));
  const httpPort = await freePort();
  let current: ManagedInfluxd | null = await startManagedInfluxd({ dataDir, httpPort });
  const url = current.url;
  return {
    url,
    async query(q, db = 'gpupulse') {
      const u = new URL('/query', url);
      u.searchParams.set('db', db);
      u.searchParams.set('q', q);
      u.searchParams.set('epoch', 'ms');
      const res = await fetch(u, { signal: AbortSignal.timeout(120_000) });
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
      await current?.stop();
      current = null;
    },
    async start() {
      if (current) return;
      current = await startManagedInfluxd({ dataDir, httpPort });
    },
    async destroy() {
      await current?.stop();
      current = null;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
