// Scale-out benchmark: the same simulated load (N nodes × G GPUs at 1 Hz) against ONE
// gpupulse-server, then against TWO processes over one redis-server (GPUPULSE_REDIS_URL), each
// fed half the nodes by its own simulator; one real influxd. Per server process: CPU (% of one
// core), peak RSS; redis-server CPU; freshness (agent sample → `fleet:delta` on a dashboard of
// the first process, which sees the other process's nodes through the replica); every acked
// sample counted in InfluxDB.
//
//   pnpm --filter @gpupulse/test exec tsx bench/scale-out-bench.ts
//   env: NODES=1000 GPUS=8 SECONDS=30 WARMUP_MS=10000 PROCS=1,2
import { connectDashboard } from '../src/support/dashboard.ts';
import { rows, startInfluxd } from '../src/support/influxd.ts';
import { type Proc, type ServerProc, startServer, startSim, stopAll } from '../src/support/processes.ts';
import { startRedis } from '../src/support/redis.ts';
import { sleep, waitFor } from '../src/support/wait.ts';
import { cpuPercentOver, cpuSeconds, peakRssMiB, percentile } from './proc-stats.ts';

const NODES = Number(process.env.NODES ?? 1000);
const GPUS = Number(process.env.GPUS ?? 8);
const SECONDS = Number(process.env.SECONDS ?? 30);
const WARMUP_MS = Number(process.env.WARMUP_MS ?? 10_000);
const PROCS = (process.env.PROCS ?? '1,2').split(',').map(Number);

function simStats(
  sim: Proc,
  msg = 'sim stats',
): { connected: number; sent: number; acked: number; rejected: number } {
  const last = sim
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .at(-1);
  return last ? JSON.parse(last) : { connected: 0, sent: 0, acked: 0, rejected: 0 };
}

async function run(procs: number) {
  const influx = await startInfluxd();
  const redis = procs > 1 ? await startRedis() : null;
  const env = {
    GPUPULSE_INFLUX_URL: influx.url,
    GPUPULSE_LOG_LEVEL: 'warn',
    ...(redis ? { GPUPULSE_REDIS_URL: redis.url } : {}),
  };
  const servers: ServerProc[] = [];
  for (let i = 0; i < procs; i++) servers.push(await startServer(env));
  const per = Math.ceil(NODES / procs);
  const sims = servers.map((s, i) =>
    startSim(s.url, [
      '--nodes',
      String(Math.min(per, NODES - i * per)),
      '--gpus-per-node',
      String(GPUS),
      '--prefix',
      `load${i}`,
    ]),
  );
  await waitFor(
    'all simulated nodes connected',
    () => sims.reduce((n, s) => n + simStats(s).connected, 0) >= NODES,
    300_000,
    1000,
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}: ${sims.map((s) => JSON.stringify(simStats(s))).join(', ')}\n${sims[0]!.output().slice(-1500)}`,
    );
  });
  await sleep(WARMUP_MS);
  const dash = connectDashboard(servers[0]!.url);
  const lags: number[] = [];
  const seen = new Map<string, number>();
  dash.socket.on('fleet:delta', (d) => {
    const now = Date.now();
    for (const n of [...d.nodes, ...(d.patches ?? [])]) {
      const ts = n.lastSampleTs;
      if (typeof ts === 'number' && seen.get(n.node) !== ts) {
        seen.set(n.node, ts);
        lags.push(now - ts);
      }
    }
  });
  const redisPid = redis ? redis.pid : Number.NaN;
  const redis0 = Number.isFinite(redisPid) ? cpuSeconds(redisPid) : NaN;
  const acked0 = sims.reduce((n, s) => n + simStats(s).acked, 0);
  const cpus = await Promise.all(servers.map((s) => cpuPercentOver(s.child.pid!, SECONDS * 1000)));
  const redisCpu = Number.isFinite(redisPid) ? ((cpuSeconds(redisPid) - redis0) / SECONDS) * 100 : NaN;
  const rss = servers.map((s) => peakRssMiB(s.child.pid!));
  const ackedInWindow = sims.reduce((n, s) => n + simStats(s).acked, 0) - acked0;
  const remoteSeen = [...seen.keys()].filter((n) => !n.startsWith('load0-')).length;
  dash.close();
  for (const s of sims) await s.stop();
  const backlog = async (url: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const v = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    return v('gpupulse_write_buffer_points') + v('gpupulse_spool_points');
  };
  for (const s of servers)
    await waitFor('write backlog drained', async () => (await backlog(s.url)) === 0, 300_000, 500);
  const acked = sims.reduce((n, s) => n + simStats(s, 'stopping').acked, 0);
  const sent = sims.reduce((n, s) => n + simStats(s, 'stopping').sent, 0);
  const countPoints = async () =>
    Number(
      rows(await influx.query(`SELECT count("utilization_gpu") FROM "nvidia_smi" WHERE "host" =~ /^load/`))[0]
        ?.count ?? 0,
    );
  // The backlog gauges can read 0 while the last batch is in flight: wait (bounded) for the count.
  const count = await waitFor(
    'acked samples in InfluxDB',
    async () => {
      const c = await countPoints();
      return c >= acked * GPUS ? c : undefined;
    },
    30_000,
    1000,
  ).catch(countPoints);
  for (const s of servers) await s.stop();
  await influx.stop();
  await redis?.stop();
  return { procs, cpus, rss, redisCpu, lags, ackedInWindow, acked, sent, count, remoteSeen };
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
try {
  console.log(
    `scale-out benchmark: ${NODES} nodes × ${GPUS} GPUs at 1 Hz, ${SECONDS} s after ${WARMUP_MS / 1000} s warm-up`,
  );
  const out = [];
  for (const p of PROCS) out.push(await run(p));
  console.log('');
  console.log(
    '| processes | CPU per process (% of one core) | sum | peak RSS per process (MiB) | redis-server CPU | freshness p50 / p99 / max (ms) | GPU-samples/s acked | every acked sample stored |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of out) {
    const ok = r.count >= r.acked * GPUS && r.count <= r.sent * GPUS;
    console.log(
      `| ${r.procs} | ${r.cpus.map((c) => fmt(c)).join(' + ')} | ${fmt(r.cpus.reduce((a, b) => a + b, 0))} | ${r.rss.map((x) => fmt(x, 0)).join(', ')} | ${fmt(r.redisCpu)} | ${fmt(percentile(r.lags, 50), 0)} / ${fmt(percentile(r.lags, 99), 0)} / ${fmt(Math.max(...r.lags), 0)} (${r.procs > 1 ? `${r.remoteSeen} remote nodes seen` : 'local'}) | ${fmt((r.ackedInWindow * GPUS) / SECONDS, 0)} | ${ok ? 'yes' : 'NO'} (${r.count} points, ${r.acked} acked) |`,
    );
  }
} finally {
  await stopAll();
}
