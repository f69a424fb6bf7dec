import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureQueryGpu, cellNumber } from './support/captures.ts';
import { connectDashboard, type TestDashboard } from './support/dashboard.ts';
import { rows, startInfluxd, type TestInfluxd } from './support/influxd.ts';
import { type Proc, type ServerProc, startAgent, startServer, stopAll } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

// End to end on real parts: fake nvidia-smi (H100 load capture) → gpupulse-agent → gpupulse-server
// → real influxd + a real Socket.IO dashboard client. Every value is checked against the capture.
const CAPTURE = 'linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt';
const NODE = 'e2e-h100 "node",=1';

describe('agent → server → InfluxDB and dashboard', () => {
  let influx: TestInfluxd;
  let server: ServerProc;
  let agent: Proc;
  let dash: TestDashboard;
  const expected = captureQueryGpu(CAPTURE, 'load');

  beforeAll(async () => {
    influx = await startInfluxd();
    server = await startServer({ GPUPULSE_INFLUX_URL: influx.url });
    dash = connectDashboard(server.url);
    agent = startAgent({ server: server.url, node: NODE, capture: CAPTURE, state: 'load' });
  });

  afterAll(async () => {
    dash?.close();
    await stopAll();
    await influx?.stop();
  });

  it('the capture is the oracle: one H100 under load', () => {
    expect(expected).toHaveLength(1);
    expect(cellNumber(expected[0]?.['utilization.gpu'])).toBe(100);
  });

  it('a dashboard receives the replayed values live', async () => {
    const node = await waitFor(
      'the agent node on the dashboard',
      () => {
        const n = dash.nodes.get(NODE);
        return n && n.gpus.length > 0 ? n : undefined;
      },
      30_000,
    );
    expect(dash.snapshots.length).toBeGreaterThanOrEqual(1);
    expect(node.status).toBe('online');
    const row = expected[0]!;
    const gpu = node.gpus[0]!;
    expect(gpu.uuid).toBe(row.uuid);
    expect(gpu.name).toBe(row.name);
    expect(gpu.index).toBe(cellNumber(row.index));
    expect(gpu.utilizationGpuPercent).toBe(cellNumber(row['utilization.gpu']));
    expect(gpu.utilizationMemoryPercent).toBe(cellNumber(row['utilization.memory']));
    expect(gpu.memoryUsedMiB).toBe(cellNumber(row['memory.used']));
    expect(gpu.memoryTotalMiB).toBe(cellNumber(row['memory.total']));
    expect(gpu.temperatureCelsius).toBe(cellNumber(row['temperature.gpu']));
    expect(gpu.powerDrawWatts).toBe(cellNumber(row['power.draw']));
    expect(gpu.powerLimitWatts).toBe(cellNumber(row['power.limit']));
    expect(gpu.fanSpeedPercent).toBeNull(); // [N/A] on this datacenter card: unknown, never 0
    expect(gpu.pstate).toBe(row.pstate);
    expect(gpu.clocksSmMHz).toBe(cellNumber(row['clocks.current.sm']));
    expect(gpu.clocksMemoryMHz).toBe(cellNumber(row['clocks.current.memory']));
    expect(node.host?.memoryTotalBytes).toBeGreaterThan(0);
  });

  it('GET /api/v1/fleet holds the same values', async () => {
    const body = (await (await fetch(`${server.url}/api/v1/fleet`)).json()) as {
      nodes: { node: string; gpus: { utilizationGpuPercent: number; powerDrawWatts: number }[] }[];
    };
    const node = body.nodes.find((n) => n.node === NODE);
    expect(node?.gpus[0]?.utilizationGpuPercent).toBe(cellNumber(expected[0]?.['utilization.gpu']));
    expect(node?.gpus[0]?.powerDrawWatts).toBe(cellNumber(expected[0]?.['power.draw']));
  });

  it('InfluxDB holds the sample in Telegraf’s nvidia_smi schema, field by field', async () => {
    const row = expected[0]!;
    const hostLiteral = NODE.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    const points = await waitFor(
      'nvidia_smi points in InfluxDB',
      async () => {
        const r = rows(await influx.query(`SELECT * FROM "nvidia_smi" WHERE "host" = '${hostLiteral}'`));
        return r.length > 0 ? r : undefined;
      },
      30_000,
      500,
    );
    const p = points.at(-1)!;
    expect(p.uuid).toBe(row.uuid);
    expect(p.name).toBe(row.name);
    expect(p.index).toBe(String(cellNumber(row.index)));
    expect(p.pstate).toBe(row.pstate);
    expect(p.utilization_gpu).toBe(cellNumber(row['utilization.gpu']));
    expect(p.utilization_memory).toBe(cellNumber(row['utilization.memory']));
    expect(p.memory_used).toBe(cellNumber(row['memory.used']));
    expect(p.memory_total).toBe(cellNumber(row['memory.total']));
    expect(p.temperature_gpu).toBe(cellNumber(row['temperature.gpu']));
    expect(p.power_draw).toBe(cellNumber(row['power.draw']));
    expect(p.power_limit).toBe(cellNumber(row['power.limit']));
    expect(p.clocks_current_sm).toBe(cellNumber(row['clocks.current.sm']));
    expect(p.clocks_current_memory).toBe(cellNumber(row['clocks.current.memory']));
    // unknown values are absent, not 0
    expect(p.fan_speed ?? null).toBeNull();
    // integers stay integers (Telegraf writes utilization/memory/temperature as ints)
    const types = rows(await influx.query('SHOW FIELD KEYS FROM "nvidia_smi"'));
    const typeOf = (k: string) => types.find((t) => t.fieldKey === k)?.fieldType;
    expect(typeOf('utilization_gpu')).toBe('integer');
    expect(typeOf('memory_used')).toBe('integer');
    expect(typeOf('temperature_gpu')).toBe('integer');
    expect(typeOf('power_draw')).toBe('float');
  });

  it('host metrics land in gpupulse_host', async () => {
    const hostLiteral = NODE.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    const r = await waitFor(
      'gpupulse_host points',
      async () => {
        const x = rows(await influx.query(`SELECT * FROM "gpupulse_host" WHERE "host" = '${hostLiteral}'`));
        return x.length > 0 ? x : undefined;
      },
      30_000,
      500,
    );
    expect(Number(r.at(-1)?.memory_total)).toBeGreaterThan(0);
  });

  it('SIGTERM stops the agent with exit 0 within 5 s, and its node goes offline on the dashboard', async () => {
    const t0 = Date.now();
    const code = await agent.stop(10_000);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    await waitFor('node offline after disconnect', () => dash.nodes.get(NODE)?.status === 'offline', 10_000);
  });
});
