// Property: whatever an agent sends, "acked" means "stored exactly as sent", and "rejected" means
// "nothing stored". Arbitrary samples (fast-check) with hostile strings in every node-side name
// and boundary numbers go through a real server (createServer) over a real Socket.IO agent
// connection into a real influxd; every point is read back with InfluxQL and compared field by
// field with what the sample said, mapped by the server's schema (server/src/storage/schema.ts).
//
// CI: a fixed seed and GPUPULSE_PROPERTY_RUNS cases (default 200, ~10 s). A longer run:
//   GPUPULSE_PROPERTY_RUNS=2000 GPUPULSE_PROPERTY_SEED=$RANDOM pnpm exec vitest run src/property-ingest.test.ts
// A failing case is printed with its seed and path; GPUPULSE_PROPERTY_SHRINK=1 shrinks it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AGENT_NAMESPACE,
  type AgentToServerEvents,
  type GpuMetrics,
  type GpuProcess,
  type HostMetrics,
  PROTOCOL_VERSION,
  type Sample,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { createServer, type GpupulseServer, InfluxStore } from '@gpupulse/server';
import fc from 'fast-check';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InfluxSeries, startInfluxd, type TestInfluxd } from './support/influxd.ts';
import {
  type ExpectedPoint,
  expectedPoints,
  influxStringLiteral,
  type PropertyAck,
  readAck,
  storedName,
} from './support/ingest-oracle.ts';

const RUNS = Number(process.env.GPUPULSE_PROPERTY_RUNS ?? 200);
const SEED = Number(process.env.GPUPULSE_PROPERTY_SEED ?? 20261201);
const SHRINK = process.env.GPUPULSE_PROPERTY_SHRINK === '1';
const TOKEN = 'property-token';
const DB = 'gpupulse';

// ---- arbitraries ----

/** The characters that break naive line protocol, InfluxQL, JSON, logs and HTML. */
const HOSTILE_UNITS = [
  '"',
  "'",
  ',',
  '=',
  ' ',
  '\\',
  '\n',
  '\r',
  '\t',
  '\u0000',
  '\u007f',
  '😀',
  '👩‍💻',
  '한',
  '국',
  '어',
  'a',
  'Z',
  '0',
  '.',
  '-',
  '_',
  '#',
  '<',
  '>',
  '{',
  '}',
];
const isControl = (ch: string) => {
  const c = ch.codePointAt(0) ?? 0;
  return c < 0x20 || c === 0x7f;
};
const hasControl = (s: string) => Array.from(s).some(isControl);
const hostileBody = fc
  .array(fc.constantFrom(...HOSTILE_UNITS), { minLength: 1, maxLength: 16 })
  .map((a) => a.join(''));
/** A hostile name; a quarter of them end in a backslash (refused by influxd as a tag end when not escaped). */
const hostile = fc.oneof(
  { weight: 3, arbitrary: hostileBody },
  { weight: 1, arbitrary: hostileBody.map((s) => `${s}\\`) },
);
/** Like `hostile` without control characters (node names: the handshake refuses those). */
const hostileNodeSuffix = hostile.map((s) =>
  Array.from(s)
    .map((ch) => (isControl(ch) ? '_' : ch))
    .join(''),
);

/** A number with a provenance: `plausible` (what hardware reports) or `edge` (a boundary or worse). */
interface Num {
  v: number | null;
  edge: boolean;
}
const EDGE_NUMBERS = [
  0,
  -1,
  -0.5,
  87.5,
  100,
  100.5,
  101,
  150,
  151,
  -41,
  2 ** 31,
  2 ** 40,
  2 ** 40 + 1,
  2 ** 53,
  2 ** 63,
  1e300,
  1e-7,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
];
const edge: fc.Arbitrary<Num> = fc.constantFrom(...EDGE_NUMBERS).map((v) => ({ v, edge: true }));
const num = (plausible: fc.Arbitrary<number>, nullable = true): fc.Arbitrary<Num> =>
  fc.oneof(
    { weight: 30, arbitrary: plausible.map((v) => ({ v, edge: false })) },
    { weight: nullable ? 2 : 0, arbitrary: fc.constant<Num>({ v: null, edge: false }) },
    { weight: 1, arbitrary: edge },
  );
const int = (min: number, max: number) => num(fc.integer({ min, max }));
const float = (min: number, max: number, decimals = 2) =>
  num(fc.integer({ min: min * 10 ** decimals, max: max * 10 ** decimals }).map((x) => x / 10 ** decimals));

const gpuNumbers = fc.record({
  utilizationGpuPercent: int(0, 100),
  utilizationMemoryPercent: int(0, 100),
  memoryUsedMiB: int(0, 200_000),
  memoryTotalMiB: int(1, 200_000),
  temperatureCelsius: int(20, 95),
  powerDrawWatts: float(0, 1000),
  powerLimitWatts: float(50, 1000),
  fanSpeedPercent: int(0, 100),
  clocksSmMHz: int(0, 3000),
  clocksMemoryMHz: int(0, 10_000),
  utilizationEncoderPercent: int(0, 100),
  memoryReservedMiB: int(0, 1024),
  memoryTemperatureCelsius: int(20, 110),
  powerEnforcedLimitWatts: float(50, 1000),
  clocksMaxSmMHz: int(0, 3000),
  pcieLinkGenCurrent: int(1, 6),
  eccErrorsCorrectedAggregate: int(0, 1_000_000),
  clocksEventReasonsActive: int(0, 65_535),
});
type GpuNumbers = Record<string, Num>;

const hostNumbers = fc.record({
  cpuPercent: float(0, 100),
  memoryUsedBytes: int(0, 2 ** 40),
  memoryTotalBytes: int(1, 2 ** 40),
  load1: float(0, 512),
  load5: float(0, 512),
  load15: float(0, 512),
  netRxBytesPerSec: float(0, 1e10, 1),
  netTxBytesPerSec: float(0, 1e10, 1),
  uptimeSeconds: float(0, 1e8, 1),
  swapUsedBytes: int(0, 2 ** 36),
});

/** How a sample's timestamp relates to "now" when it is sent. */
const TS_HOSTILE = ['seconds', 'future10y', 'future1h', 'old30d', 'fraction'] as const;
type TsKind = 'now' | (typeof TS_HOSTILE)[number];
/** Three in four samples are dated now; the rest in seconds, far ahead, an hour ahead, 30 days old, fractional. */
const tsKind: fc.Arbitrary<TsKind> = fc.oneof(
  { weight: 15, arbitrary: fc.constant('now' as const) },
  { weight: 5, arbitrary: fc.constantFrom(...TS_HOSTILE) },
);

interface GpuIdentity {
  index: number;
  uuid: string;
  name: string;
  pstate: string | null;
  computeMode: string | null;
  driverVersion: string | null;
  serial: string | null;
}

const gpuIdentity = (index: number) =>
  fc.record({
    index: fc.constant(index),
    uuid: hostile.map((s) => `GPU-${s}-${index}`),
    name: hostile,
    // pstate is at most 8 UTF-16 units: 4 code points (never half an emoji)
    pstate: fc.oneof(
      fc.constantFrom('P0', 'P2', 'P8'),
      hostile.map((s) => Array.from(s).slice(0, 4).join('')),
      fc.constant(null),
    ),
    computeMode: fc.oneof(fc.constant('Default'), hostile, fc.constant(null)),
    driverVersion: fc.oneof(fc.constant('590.48.01'), hostile, fc.constant(null)),
    serial: fc.oneof(hostile, fc.constant(null)),
  });

interface ProcSpec {
  gpu: number;
  usedMemoryMiB: Num;
  name: string;
  user: string | null;
  uid: number | null;
  slurmJobId: string | null;
  slurmUser: string | null;
  k8sNamespace: string | null;
  envProject: string | null;
}
const procSpec: fc.Arbitrary<ProcSpec> = fc.record({
  gpu: fc.nat({ max: 7 }),
  usedMemoryMiB: int(0, 80_000),
  name: fc.oneof(hostile, fc.constant('python'), fc.constant('')),
  user: fc.oneof(hostile, fc.constant(null)),
  uid: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(null)),
  slurmJobId: fc.oneof(hostile, fc.constant(null)),
  slurmUser: fc.oneof(hostile, fc.constant(null)),
  k8sNamespace: fc.oneof(hostile, fc.constant(null)),
  envProject: fc.oneof(hostile, fc.constant(null)),
});

interface SampleSpec {
  tsKind: TsKind;
  state: 'ok' | 'stale' | 'error';
  error: string | null;
  gpus: GpuNumbers[];
  host: Record<string, Num> | null;
  processes: ProcSpec[] | null;
}
const sampleSpec = (gpuCount: number): fc.Arbitrary<SampleSpec> =>
  fc.record({
    tsKind,
    state: fc.constantFrom('ok', 'ok', 'ok', 'stale', 'error'),
    error: fc.oneof(hostile, fc.constant(null)),
    gpus: fc.array(gpuNumbers as fc.Arbitrary<GpuNumbers>, { minLength: gpuCount, maxLength: gpuCount }),
    host: fc.oneof(
      { weight: 4, arbitrary: hostNumbers as fc.Arbitrary<Record<string, Num>> },
      { weight: 1, arbitrary: fc.constant(null) },
    ),
    processes: fc.oneof(fc.array(procSpec, { maxLength: 3 }), fc.constant(null)),
  });

interface CaseSpec {
  nodeSuffix: string;
  gpus: GpuIdentity[];
  reports: SampleSpec[][];
}
const caseSpec: fc.Arbitrary<CaseSpec> = fc
  .uniqueArray(fc.nat({ max: 7 }), { maxLength: 3 })
  .chain((indices) =>
    fc.record({
      nodeSuffix: hostileNodeSuffix,
      gpus: indices.length === 0 ? fc.constant([]) : fc.tuple(...indices.map(gpuIdentity)),
      reports: fc.array(fc.array(sampleSpec(indices.length), { minLength: 1, maxLength: 3 }), {
        minLength: 1,
        maxLength: 2,
      }),
    }),
  );

// ---- from a spec to the wire ----

const DAY = 86_400_000;

function tsOf(kind: TsKind, base: number): number {
  switch (kind) {
    case 'now':
      return base;
    case 'seconds':
      return Math.floor(base / 1000);
    case 'future10y':
      return base + 3650 * DAY;
    case 'future1h':
      return base + 3_600_000;
    case 'old30d':
      return base - 30 * DAY;
    case 'fraction':
      return base + 0.5;
  }
}

const vals = (r: Record<string, Num>) => Object.fromEntries(Object.entries(r).map(([k, n]) => [k, n.v]));

function toSample(spec: SampleSpec, seq: number, ts: number, gpus: GpuIdentity[]): Sample {
  const sample: Sample = {
    seq,
    ts,
    gpuCollector: 'ok',
    gpus: gpus.map(
      (g, i) =>
        ({
          index: g.index,
          uuid: g.uuid,
          name: g.name,
          state: spec.state,
          error: spec.state === 'ok' ? null : spec.error,
          pstate: g.pstate,
          computeMode: g.computeMode,
          driverVersion: g.driverVersion,
          serial: g.serial,
          utilizationDecoderPercent: null,
          ...vals(spec.gpus[i]!),
        }) as unknown as GpuMetrics,
    ),
    host: spec.host ? (vals(spec.host) as unknown as HostMetrics) : null,
  };
  if (spec.processes && gpus.length > 0) {
    const used = new Set<number>();
    sample.processes = spec.processes.map((p, k): GpuProcess => {
      let pid = 1000 + k * 7 + (p.uid ?? 0);
      while (used.has(pid)) pid++;
      used.add(pid);
      return {
        gpuUuid: gpus[p.gpu % gpus.length]!.uuid,
        pid,
        usedMemoryMiB: p.usedMemoryMiB.v,
        name: p.name,
        cmdline: p.name,
        uid: p.uid,
        user: p.user,
        slurmJobId: p.slurmJobId,
        slurmUser: p.slurmUser,
        k8sNamespace: p.k8sNamespace,
        env: p.envProject === null ? {} : { GPUPULSE_PROJECT: p.envProject },
      };
    });
  }
  return sample;
}

/** Every string an agent put into the sample (names, users, ids, env values). */
function stringsOf(s: Sample): string[] {
  const out: string[] = [];
  for (const g of s.gpus) {
    for (const v of [g.uuid, g.name, g.pstate, g.computeMode, g.driverVersion, g.serial, g.error])
      if (typeof v === 'string') out.push(v);
  }
  for (const p of s.processes ?? []) {
    for (const v of [
      p.name,
      p.cmdline,
      p.user,
      p.slurmJobId,
      p.slurmUser,
      p.k8sNamespace,
      ...Object.values(p.env ?? {}),
    ])
      if (typeof v === 'string') out.push(v);
  }
  return out;
}

const PERCENT = new Set([
  'utilizationGpuPercent',
  'utilizationMemoryPercent',
  'fanSpeedPercent',
  'utilizationEncoderPercent',
  'cpuPercent',
]);
const TEMPERATURE = new Set(['temperatureCelsius', 'memoryTemperatureCelsius']);

/**
 * Values no GPU or host can report (issue 9's bounds): such a sample must be rejected. Everything
 * else is left to the server; the storage round trip below judges it.
 */
function implausible(spec: SampleSpec, sample: Sample, now: number): string | null {
  const { ts } = sample;
  if (ts > now + 5 * 60_000 + 30_000) return `ts ${ts} is more than 5 min ahead of the server`;
  const check = (key: string, n: Num): string | null => {
    if (n.v === null) return null;
    if (PERCENT.has(key) && (n.v < 0 || n.v > 100)) return `${key} ${n.v} outside 0..100`;
    if (TEMPERATURE.has(key) && (n.v < -40 || n.v > 150)) return `${key} ${n.v} outside -40..150`;
    if (!TEMPERATURE.has(key) && n.v < 0) return `${key} ${n.v} is negative`;
    if (/MiB$/.test(key) && n.v > 2 ** 40) return `${key} ${n.v} above 2^40 MiB`;
    return null;
  };
  for (const g of spec.gpus) for (const [k, n] of Object.entries(g)) if (check(k, n)) return check(k, n);
  if (spec.host) for (const [k, n] of Object.entries(spec.host)) if (check(k, n)) return check(k, n);
  // processes are sent only when the case has GPUs (see toSample)
  for (const p of sample.processes ?? [])
    if (check('usedMemoryMiB', { v: p.usedMemoryMiB, edge: true }))
      return check('usedMemoryMiB', { v: p.usedMemoryMiB, edge: true });
  return null;
}

/** Plausible numbers, a plausible ts and no control characters: a correct server must accept it. */
function clean(spec: SampleSpec, sample: Sample): boolean {
  if (spec.tsKind !== 'now') return false;
  const nums = [...spec.gpus.flatMap((g) => Object.values(g)), ...Object.values(spec.host ?? {})];
  if (sample.processes) for (const p of spec.processes ?? []) nums.push(p.usedMemoryMiB);
  if (nums.some((n) => n.edge)) return false;
  return !stringsOf(sample).some(hasControl);
}

// ---- the test ----

type AgentSocket = Socket<ServerToAgentEvents, AgentToServerEvents>;

describe('property: acked = stored exactly, rejected = nothing stored (real server, real influxd)', () => {
  let influx: TestInfluxd;
  let server: GpupulseServer;
  let dataDir: string;
  const stats = {
    cases: 0,
    samples: 0,
    accepted: 0,
    rejected: 0,
    points: 0,
    codes: new Map<string, number>(),
  };
  const nodes: string[] = [];

  beforeAll(async () => {
    influx = await startInfluxd();
    dataDir = await mkdtemp(join(tmpdir(), 'gpupulse-property-'));
    const store = new InfluxStore({ url: influx.url, database: DB, kind: 'influxdb' });
    await store.init();
    server = await createServer({
      store,
      config: { port: 0, host: '127.0.0.1', agentTokens: [TOKEN], dataDir },
    });
  });

  afterAll(async () => {
    await server?.close();
    await influx?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function storedFor(node: string): Promise<InfluxSeries[]> {
    return influx.query(
      `SELECT * FROM "nvidia_smi", "gpupulse_host", "gpupulse_process" WHERE "host" = ${influxStringLiteral(storedName(node))} GROUP BY *`,
      DB,
    );
  }

  async function runCase(c: CaseSpec): Promise<void> {
    const i = stats.cases++;
    const node = `prop-${i}-${c.nodeSuffix}`;
    nodes.push(node);
    const socket: AgentSocket = io(`${server.url}${AGENT_NAMESPACE}`, {
      auth: { token: TOKEN, node, protocolVersion: PROTOCOL_VERSION, intervalMs: 1000 },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', (err) =>
          reject(new Error(`node ${JSON.stringify(node)} refused: ${err.message}`)),
        );
      });
      const accepted: Sample[][] = [];
      let seq = 0;
      // One second apart, ending a little before now (the server's clock is the same clock).
      const base = Date.now() - 60_000;
      for (const report of c.reports) {
        const sent = report.map((spec) => {
          const s = toSample(spec, seq, tsOf(spec.tsKind, base + seq * 1000), c.gpus);
          seq++;
          return { spec, s };
        });
        const now = Date.now();
        const raw = await socket
          .timeout(10_000)
          .emitWithAck('samples:report', { samples: sent.map((x) => x.s) });
        const acceptedHere: Sample[] = [];
        accepted.push(acceptedHere);
        const ack: PropertyAck = readAck(
          raw,
          sent.map((x) => x.s.seq),
        );
        for (const { spec, s } of sent) {
          stats.samples++;
          const isAccepted = ack.accepted.has(s.seq);
          const why = implausible(spec, s, now);
          if (why) expect.soft(isAccepted, `seq ${s.seq} acked although ${why}`).toBe(false);
          if (clean(spec, s))
            expect(
              isAccepted,
              `a plausible sample (hostile names only) was refused: ${ack.reasons.get(s.seq) ?? ''}`,
            ).toBe(true);
          if (isAccepted) {
            stats.accepted++;
            acceptedHere.push(s);
          } else {
            stats.rejected++;
            const r = ack.reasons.get(s.seq) ?? 'none';
            const code = r.split(':')[0] ?? r;
            stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
          }
        }
      }
      const expected: ExpectedPoint[] = expectedPoints(node, accepted);
      stats.points += expected.length;
      await server.buffer.flush(10_000);
      // The write buffer has handed everything to influxd; allow a moment for any spool drain.
      let stored = await storedFor(node);
      const deadline = Date.now() + 5000;
      while (stored.reduce((n, s) => n + s.values.length, 0) < expected.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        stored = await storedFor(node);
      }
      compare(node, expected, stored);
    } finally {
      socket.disconnect();
    }
  }

  it(
    `${RUNS} arbitrary cases (seed ${SEED}): every acked sample stored exactly, no rejected one stored`,
    async () => {
      await fc.assert(fc.asyncProperty(caseSpec, runCase), {
        seed: SEED,
        numRuns: RUNS,
        endOnFailure: !SHRINK,
        verbose: 1,
      });
      // No stray host anywhere: every host in the three measurements is one of the cases' nodes.
      const hosts = await influx.query(
        'SHOW TAG VALUES FROM "nvidia_smi", "gpupulse_host", "gpupulse_process" WITH KEY = "host"',
        DB,
      );
      const known = new Set(nodes.map(storedName));
      for (const s of hosts)
        for (const v of s.values)
          expect(known.has(String(v[1])), `stray host ${JSON.stringify(v[1])}`).toBe(true);
      // A run that accepted or refused nothing proves nothing.
      expect(stats.accepted).toBeGreaterThan(RUNS * 0.5);
      expect(stats.rejected).toBeGreaterThan(0);
      console.info(
        `property-ingest: ${stats.cases} cases (seed ${SEED}), ${stats.samples} samples: ${stats.accepted} accepted ` +
          `(${stats.points} points checked field by field), ${stats.rejected} rejected ` +
          `(${[...stats.codes].map(([k, n]) => `${k} ${n}`).join(', ')})`,
      );
    },
    Math.max(120_000, RUNS * 3_000),
  );
});

/** Stored points of one node equal the expected ones: same set of series × time, same field values. */
function compare(node: string, expected: ExpectedPoint[], stored: InfluxSeries[]): void {
  const got = new Map<string, Record<string, unknown>>();
  for (const s of stored) {
    for (const v of s.values) {
      const row = Object.fromEntries(s.columns.map((c, k) => [c, v[k]]));
      const identity = s.name === 'gpupulse_process' ? { ...s.tags, pid: String(row.pid) } : (s.tags ?? {});
      const key = pointKey(s.name, identity, Number(row.time));
      const fields = Object.fromEntries(Object.entries(row).filter(([k, x]) => k !== 'time' && x !== null));
      got.set(key, { tags: s.tags ?? {}, fields });
    }
  }
  const want = new Map(expected.map((p) => [pointKey(p.measurement, p.identity, p.ts), p]));
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  expect({ node, missing, extra }).toEqual({ node, missing: [], extra: [] });
  for (const [key, p] of want) {
    const g = got.get(key) as { tags: Record<string, string>; fields: Record<string, unknown> };
    // every tag as sent (including the optional ones)
    const tags = Object.fromEntries(Object.entries(g.tags).filter(([, v]) => v !== ''));
    expect({ key, tags }).toEqual({ key, tags: p.tags });
    for (const [f, v] of Object.entries(p.fields))
      expect({ key, field: f, value: g.fields[f] }).toEqual({ key, field: f, value: v });
    for (const f of Object.keys(g.fields)) {
      if (f in p.fields) continue;
      // a field we did not expect: only a slow field repeated (written on change / once a minute)
      expect(
        p.optional[f],
        `${key}: unexpected field ${f}=${JSON.stringify(g.fields[f])}`,
      ).not.toBeUndefined();
      expect({ key, field: f, value: g.fields[f] }).toEqual({ key, field: f, value: p.optional[f] });
    }
  }
}

function pointKey(measurement: string, identity: Record<string, string>, ts: number): string {
  const id =
    measurement === 'nvidia_smi'
      ? [identity.host, identity.uuid, identity.index]
      : measurement === 'gpupulse_process'
        ? [identity.host, identity.uuid, identity.pid]
        : [identity.host];
  return JSON.stringify([measurement, ...id, ts]);
}
