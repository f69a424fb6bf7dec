import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GPU_METRICS, type GpuMetricDef, GpuMetricsSchema, GpuProcessSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  decodeClockEventReasons,
  headerFieldName,
  isNullToken,
  parseBool,
  parseComputeApps,
  parseGpuCsv,
  parseGpuRow,
  parseHelpQuery,
  parseNumber,
  parseVersion,
  planGpuQuery,
  RoundAssembler,
  splitRow,
  toGpuMetrics,
} from './parse.ts';
import { captureFiles, captureInfo, readCapture, section, TESTDATA_DIR } from './testdata.ts';

interface Expect {
  util: number | null;
  memUtil?: number | null;
  memUsed: number;
  power: number;
  temp: number;
  memTemp?: number | null;
  fan?: number | null;
  pstate?: string;
  apps: number;
  firstApp?: { pid: number; name: string; mem: number | null };
  extra?: Record<string, unknown>;
}

// Values read off the capture text (the full `--query-gpu` CSV and the compute-apps CSV).
const EXPECTED: Record<string, Expect> = {
  'nvidia-geforce-rtx-2080-super__595.71.05__idle': {
    util: 0,
    memUsed: 214,
    power: 39.32,
    temp: 40,
    memTemp: null, // bare `N/A`
    fan: 38,
    pstate: 'P8',
    apps: 0,
    extra: { serial: null, clocksEventReasons: ['sw_power_cap'] },
  },
  'nvidia-geforce-rtx-2080-super__595.71.05__load': {
    util: 8,
    memUsed: 819,
    power: 111.5,
    temp: 45,
    apps: 2,
    firstApp: { pid: 5268, name: 'ffmpeg', mem: 370 },
    extra: { utilizationEncoderPercent: 100 },
  },
  'nvidia-geforce-rtx-4080-super__595.71.05__idle': {
    util: 0,
    memUsed: 596,
    power: 26.2,
    temp: 43,
    fan: 0,
    apps: 1,
    firstApp: { pid: 2165, name: '/usr/bin/kwin_wayland', mem: 25 },
  },
  'nvidia-geforce-rtx-4080-super__595.71.05__load': {
    util: 7,
    memUsed: 1474,
    power: 84.24,
    temp: 46,
    apps: 3,
    firstApp: { pid: 2165, name: '/usr/bin/kwin_wayland', mem: 25 },
  },
  'nvidia-h100-80gb-hbm3__590.48.01__idle': {
    util: 0,
    memUsed: 0,
    power: 69.85,
    temp: 41,
    memTemp: 48,
    fan: null,
    pstate: 'P0',
    apps: 0,
    extra: {
      clocksEventReasonsActive: 1,
      clocksEventReasons: ['gpu_idle'],
      eccModeCurrent: true,
      migModeCurrent: false,
    },
  },
  'nvidia-h100-80gb-hbm3__590.48.01__load': {
    util: 100,
    memUtil: 11,
    memUsed: 19818,
    power: 631.95,
    temp: 59,
    memTemp: 54,
    fan: null,
    apps: 3,
    firstApp: { pid: 11327, name: '/root/tools/memhog', mem: 2566 },
    extra: {
      memoryTotalMiB: 81559,
      memoryFreeMiB: 61263,
      memoryReservedMiB: 479,
      powerLimitWatts: 700,
      powerEnforcedLimitWatts: 700,
      clocksSmMHz: 1980,
      clocksMemoryMHz: 2619,
      clocksMaxSmMHz: 1980,
      pcieLinkGenCurrent: 5,
      pcieLinkWidthCurrent: 16,
      persistenceMode: true,
      computeMode: 'Default',
      eccErrorsCorrectedVolatile: 0,
      eccErrorsUncorrectedAggregate: 0,
      remappedRowsPending: false,
      driverVersion: '590.48.01',
      pciBusId: '00000000:00:09.0',
      clocksEventReasons: [],
    },
  },
  'nvidia-h200-mig__590.48.01__idle': {
    util: null, // `[N/A]` in MIG mode
    memUtil: null,
    memUsed: 55,
    power: 78.28,
    temp: 28,
    memTemp: 32,
    apps: 0,
    extra: { migModeCurrent: true, memoryTotalMiB: 143771 },
  },
  'nvidia-h200-mig__590.48.01__load': {
    util: null,
    memUtil: null,
    memUsed: 16959,
    power: 295.01,
    temp: 36,
    apps: 3,
    firstApp: { pid: 12249, name: '/root/tools/memhog', mem: 2194 },
    extra: { migModeCurrent: true },
  },
  'nvidia-l40s__595.80__idle': {
    util: 100, // real artefact of this capture: read as-is
    memUsed: 0,
    power: 144.97,
    temp: 63,
    memTemp: null,
    apps: 0,
  },
  'nvidia-l40s__595.80__load': {
    util: 9,
    memUsed: 1235,
    power: 110.23,
    temp: 54,
    apps: 2,
    firstApp: { pid: 20037, name: 'ffmpeg', mem: 538 },
  },
  'nvidia-geforce-rtx-2080-super__591.86__idle': {
    util: 0,
    memUsed: 702,
    power: 38.92,
    temp: 40,
    fan: 37,
    apps: 10,
    firstApp: {
      pid: 12444,
      name: 'C:\\Windows\\SystemApps\\MicrosoftWindows.Client.CBS_cw5n1h2txyewy\\TextInputHost.exe',
      mem: null, // WDDM: `[N/A]`
    },
    extra: { persistenceMode: null },
  },
  'nvidia-geforce-rtx-2080-super__591.86__load': {
    util: 7,
    memUsed: 1296,
    power: 97.43,
    temp: 45,
    apps: 12,
    firstApp: {
      pid: 12444,
      name: 'C:\\Windows\\SystemApps\\MicrosoftWindows.Client.CBS_cw5n1h2txyewy\\TextInputHost.exe',
      mem: null,
    },
  },
};

const cases = captureFiles().flatMap((file) =>
  ['idle', 'load'].map((state) => {
    const { model, driver } = captureInfo(file);
    return { name: `${model}__${driver}__${state}`, file, state };
  }),
);

describe('captures: query-gpu and query-compute-apps', () => {
  it('has an expectation for every capture section', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(cases)('$name', ({ name, file, state }) => {
    const want = EXPECTED[name];
    if (!want) throw new Error(`no expectation for ${name}`);
    const sections = readCapture(file);
    const gpus = parseGpuCsv(section(sections, state, 'query-gpu').body);
    expect(gpus).toHaveLength(1);
    const gpu = gpus[0];
    if (!gpu) throw new Error('no GPU');
    expect(GpuMetricsSchema.parse(gpu)).toEqual(gpu);
    expect(gpu.index).toBe(0);
    expect(gpu.uuid).toBe('GPU-00000000-0000-0000-0000-000000000000');
    expect(gpu.utilizationGpuPercent).toBe(want.util);
    if (want.memUtil !== undefined) expect(gpu.utilizationMemoryPercent).toBe(want.memUtil);
    expect(gpu.memoryUsedMiB).toBe(want.memUsed);
    expect(gpu.powerDrawWatts).toBe(want.power);
    expect(gpu.temperatureCelsius).toBe(want.temp);
    if (want.memTemp !== undefined) expect(gpu.memoryTemperatureCelsius).toBe(want.memTemp);
    if (want.fan !== undefined) expect(gpu.fanSpeedPercent).toBe(want.fan);
    if (want.pstate) expect(gpu.pstate).toBe(want.pstate);
    for (const [k, v] of Object.entries(want.extra ?? {})) expect(gpu[k as keyof typeof gpu], k).toEqual(v);
    // no NaN anywhere, ever
    for (const v of Object.values(gpu)) if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true);

    const apps = parseComputeApps(section(sections, state, 'query-compute-apps').body);
    expect(apps).toHaveLength(want.apps);
    for (const a of apps) expect(GpuProcessSchema.parse(a)).toEqual(a);
    if (want.firstApp) {
      expect(apps[0]).toMatchObject({
        pid: want.firstApp.pid,
        name: want.firstApp.name,
        usedMemoryMiB: want.firstApp.mem,
        gpuUuid: 'GPU-00000000-0000-0000-0000-000000000000',
      });
    }
  });
});

// ---- the metric registry drives the parser ----

const H100_LOAD = 'nvidia-h100-80gb-hbm3__590.48.01__load';
const H100_IDLE = 'nvidia-h100-80gb-hbm3__590.48.01__idle';
const RTX2080_IDLE = 'nvidia-geforce-rtx-2080-super__595.71.05__idle';
const RTX2080_LOAD = 'nvidia-geforce-rtx-2080-super__595.71.05__load';

/**
 * One parser case per registry metric read from `--query-gpu` (protocol `GPU_METRICS`): a capture
 * section and the value read off its text, or `cell:<raw>` for a metric no capture reports.
 * Adding a metric to the registry without a row here fails the first test below.
 */
const METRIC_CASES: Record<string, readonly [source: string, value: unknown]> = {
  utilizationGpuPercent: [H100_LOAD, 100],
  utilizationMemoryPercent: [H100_LOAD, 11],
  memoryUsedMiB: [H100_LOAD, 19818],
  memoryTotalMiB: [H100_LOAD, 81559],
  temperatureCelsius: [H100_LOAD, 59],
  powerDrawWatts: [H100_LOAD, 631.95],
  powerLimitWatts: [H100_LOAD, 700],
  fanSpeedPercent: ['nvidia-geforce-rtx-2080-super__591.86__idle', 37],
  pstate: [RTX2080_IDLE, 'P8'],
  clocksSmMHz: [H100_LOAD, 1980],
  clocksMemoryMHz: [H100_LOAD, 2619],
  clocksGraphicsMHz: [RTX2080_LOAD, 2055],
  clocksMaxSmMHz: [RTX2080_IDLE, 2145],
  clocksMaxMemoryMHz: [RTX2080_IDLE, 7751],
  clocksMaxGraphicsMHz: ['nvidia-geforce-rtx-4080-super__595.71.05__idle', 3165],
  utilizationEncoderPercent: [RTX2080_LOAD, 100],
  utilizationDecoderPercent: [RTX2080_LOAD, 0],
  memoryFreeMiB: [H100_LOAD, 61263],
  memoryReservedMiB: [H100_LOAD, 479],
  memoryTemperatureCelsius: [H100_IDLE, 48],
  powerEnforcedLimitWatts: [H100_LOAD, 700],
  clocksEventReasonsActive: [RTX2080_IDLE, 4],
  eccModeCurrent: [H100_IDLE, true],
  eccErrorsCorrectedVolatile: [H100_LOAD, 0],
  eccErrorsUncorrectedVolatile: ['nvidia-h200-mig__590.48.01__idle', 0],
  eccErrorsCorrectedAggregate: [H100_IDLE, 0],
  eccErrorsUncorrectedAggregate: [H100_LOAD, 0],
  retiredPagesPending: ['cell:Yes', true], // `[N/A]` on every captured board
  remappedRowsPending: [H100_LOAD, false],
  remappedRowsFailure: ['nvidia-l40s__595.80__idle', false],
  pcieLinkGenCurrent: [RTX2080_LOAD, 3],
  pcieLinkWidthCurrent: [H100_LOAD, 16],
  persistenceMode: [H100_LOAD, true],
  computeMode: [H100_LOAD, 'Default'],
  migModeCurrent: ['nvidia-h200-mig__590.48.01__idle', true],
  driverVersion: [H100_LOAD, '590.48.01'],
  serial: [H100_IDLE, '0000000000000'],
  pciBusId: [H100_LOAD, '00000000:00:09.0'],
};

const queried: readonly GpuMetricDef[] = GPU_METRICS.filter((m: GpuMetricDef) => m.smi.length > 0);

function captureGpu(source: string) {
  const c = cases.find((x) => x.name === source);
  if (!c) throw new Error(`no capture section ${source}`);
  const gpu = parseGpuCsv(section(readCapture(c.file), c.state, 'query-gpu').body)[0];
  if (!gpu) throw new Error(`no GPU in ${source}`);
  return gpu;
}

describe('metric registry → parser', () => {
  it('has a parser case for every registry metric read from --query-gpu', () => {
    expect(Object.keys(METRIC_CASES).sort()).toEqual(queried.map((m) => m.key).sort());
  });

  it.each(queried.map((m) => [m.key, m] as const))('%s is read as the registry says', (key, m) => {
    const [source, value] = METRIC_CASES[key] ?? ['', undefined];
    const gpu = source.startsWith('cell:')
      ? toGpuMetrics(
          new Map([
            ['index', '0'],
            [m.smi[0]![0]!, source.slice(5)],
          ]),
        )
      : captureGpu(source);
    expect(gpu?.[key], source).toEqual(value);
    expect(GpuMetricsSchema.parse(gpu)).toEqual(gpu);
  });

  it.each(cases)(
    '$name: every registry column of the capture is read, a null token as null',
    ({ file, state }) => {
      const body = section(readCapture(file), state, 'query-gpu').body;
      const [header = '', row = ''] = body.split('\n');
      const columns = header.split(', ').map(headerFieldName);
      const cells = row.split(', ');
      const gpu = parseGpuCsv(body)[0] as Record<string, unknown>;
      let checked = 0;
      for (const m of queried) {
        // the first group the capture has a column for (fallback groups are tested apart)
        const i = columns.findIndex((c) => m.smi.flat().includes(c));
        if (i < 0) {
          if (!m.required) expect(gpu, m.key).not.toHaveProperty(m.key);
          continue;
        }
        expect(gpu, m.key).toHaveProperty(m.key);
        const v = gpu[m.key];
        const raw = cells[i] ?? '';
        if (v === null) {
          const all = m.smi
            .flat()
            .map((n) => columns.indexOf(n))
            .filter((j) => j >= 0);
          expect(
            all.every((j) => isNullToken(cells[j] ?? '')),
            `${m.key}=${raw}`,
          ).toBe(true);
        } else {
          const kinds = { int: 'number', float: 'number', bool: 'boolean', string: 'string' } as const;
          expect(typeof v, m.key).toBe(kinds[m.type]);
          if (m.type === 'int') expect(Number.isInteger(v), m.key).toBe(true);
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(10);
    },
  );

  it('a value the protocol would refuse (fraction of an integer metric, out of bounds) is unknown, and reported', () => {
    const bad: string[] = [];
    const gpu = toGpuMetrics(
      new Map([
        ['index', '0'],
        ['utilization.gpu', '12.5 %'],
        ['temperature.gpu', '1e3'],
        ['temperature.memory', '400'],
        ['memory.used', '815 MiB'],
        ['power.draw', '-3 W'],
      ]),
      undefined,
      (key, raw) => bad.push(`${key}=${raw}`),
    );
    expect(gpu).toMatchObject({
      utilizationGpuPercent: null,
      memoryTemperatureCelsius: null,
      memoryUsedMiB: 815,
      powerDrawWatts: null,
    });
    expect(GpuMetricsSchema.parse(gpu)).toEqual(gpu);
    expect(bad).toEqual([
      'utilizationGpuPercent=12.5 %',
      'powerDrawWatts=-3 W',
      'memoryTemperatureCelsius=400',
    ]);
    // the collector's row parser passes the report on (it logs once per metric and counts)
    const seen: string[] = [];
    const row = parseGpuRow(
      '0, GPU-a, X, 101',
      ['index', 'uuid', 'name', 'utilization.gpu'],
      undefined,
      (k) => seen.push(k),
    );
    expect(row?.utilizationGpuPercent).toBeNull();
    expect(seen).toEqual(['utilizationGpuPercent']);
  });
});

describe('field discovery', () => {
  it.each(captureFiles())('%s: planned fields are all in the capture’s field list', (file) => {
    const sections = readCapture(file);
    const supported = parseHelpQuery(section(sections, 'capabilities', 'help-query-gpu').body);
    const plan = planGpuQuery(supported);
    const header = section(sections, 'load', 'query-gpu').body.split('\n')[0] ?? '';
    const columns = new Set(header.split(', ').map(headerFieldName));
    for (const f of plan) expect(columns.has(f), f).toBe(true);
    expect(plan).toContain('clocks_event_reasons.active');
    expect(plan).toContain('power.draw.instant');
    expect(plan.slice(0, 3)).toEqual(['index', 'uuid', 'name']);
  });

  it('falls back to pre-535 names and old aliases', () => {
    const help = [
      '"index"',
      '"uuid"',
      '"name"',
      '"clocks_throttle_reasons.active"',
      '"clocks.current.sm" or "clocks.sm"',
      '"power.draw"',
    ].join('\n');
    const plan = planGpuQuery(parseHelpQuery(help));
    expect(plan).toContain('clocks_throttle_reasons.active');
    expect(plan).toContain('clocks.current.sm');
    expect(plan).not.toContain('power.draw.instant');
    expect(plan).not.toContain('ecc.mode.current');
    // core fields are always asked for
    expect(plan).toContain('utilization.gpu');
  });

  it('parses --version', () => {
    const sections = readCapture('linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt');
    expect(parseVersion(section(sections, 'capabilities', 'version').body)).toEqual({
      nvidiaSmiVersion: '590.48.01',
      driverVersion: '590.48.01',
      cudaVersion: '13.1',
    });
  });
});

describe('query.txt (nvidia_gpu_exporter testdata)', () => {
  it('parses both rows, [N/A] serial → null', () => {
    const gpus = parseGpuCsv(readFileSync(join(TESTDATA_DIR, 'query.txt'), 'utf8'));
    expect(gpus).toHaveLength(2);
    expect(gpus[0]).toMatchObject({
      index: 0,
      uuid: 'GPU-df6e7a7c-7314-46f8-abc4-b88b36dcf3aa',
      name: 'NVIDIA GeForce RTX 2080 SUPER',
      driverVersion: '466.63',
      fanSpeedPercent: 38,
      memoryUsedMiB: 575,
      pciBusId: '00000000:01:00.0',
      serial: null,
      utilizationGpuPercent: null,
    });
    expect(gpus[1]).toMatchObject({
      index: 1,
      name: 'Some Other GPU',
      fanSpeedPercent: 50,
      memoryUsedMiB: 1234,
    });
  });
});

// GPL-3.0 file: read from the shared fixtures beside the repository, never copied into it.
const P100 = resolve(TESTDATA_DIR, '../../../../../../shared/fixtures/nvidia-smi/netdata/tesla-p100.csv');
describe('netdata tesla-p100.csv (csv,nounits; no index column)', () => {
  it('tesla-p100__unknown__idle', () => {
    // ../shared sits beside the repository for developers and CI alike (README); its absence is a
    // broken checkout, not a reason to skip.
    expect(existsSync(P100), `missing ${P100}: check out ../shared beside the repository`).toBe(true);
    const gpus = parseGpuCsv(readFileSync(P100, 'utf8'));
    expect(gpus).toHaveLength(1);
    expect(gpus[0]).toMatchObject({
      index: 0,
      name: 'Tesla P100-PCIE-16GB',
      uuid: 'GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6',
      fanSpeedPercent: null,
      pstate: 'P0',
      memoryReservedMiB: 103,
      memoryUsedMiB: 0,
      memoryFreeMiB: 16280,
      utilizationGpuPercent: 0,
      temperatureCelsius: 37,
      powerDrawWatts: 28.16,
      clocksGraphicsMHz: 405,
      clocksSmMHz: 405,
      clocksMemoryMHz: 715,
    });
  });
});

describe('tokens and values', () => {
  it.each([
    '[N/A]',
    'N/A',
    '[Not Supported]',
    '[Unknown Error]',
    '[Insufficient Permissions]',
    '[Requested functionality has been deprecated]',
    '[GPU requires reset]',
    '',
    '  ',
  ])('%j → null', (token) => {
    expect(isNullToken(token)).toBe(true);
    expect(parseNumber(token)).toBeNull();
    expect(parseBool(token)).toBeNull();
  });

  it('parses numbers with and without units, never NaN', () => {
    expect(parseNumber('631.95')).toBe(631.95);
    expect(parseNumber('631.95 W')).toBe(631.95);
    expect(parseNumber('7 %')).toBe(7);
    expect(parseNumber(' 815 MiB ')).toBe(815);
    expect(parseNumber('0x00000000000001FF')).toBe(511);
    expect(parseNumber('Default')).toBeNull();
    expect(parseNumber('12abc')).toBeNull();
    expect(parseNumber(undefined)).toBeNull();
  });

  it('parses booleans', () => {
    expect(parseBool('Enabled')).toBe(true);
    expect(parseBool('Disabled')).toBe(false);
    expect(parseBool('Yes')).toBe(true);
    expect(parseBool('No')).toBe(false);
    expect(parseBool('Not Active')).toBe(false);
  });

  it('decodes clock event reasons', () => {
    expect(decodeClockEventReasons(0x44)).toEqual(['sw_power_cap', 'hw_thermal_slowdown']);
    expect(decodeClockEventReasons(0)).toEqual([]);
    expect(decodeClockEventReasons(null)).toBeUndefined();
  });

  it('splits rows and validates the column count', () => {
    expect(splitRow('0, GPU-x, NVIDIA H100', 3)).toEqual(['0', 'GPU-x', 'NVIDIA H100']);
    expect(splitRow('0, GPU-x', 3)).toBeNull();
    expect(splitRow('0, GPU-x, a, b', 3)).toBeNull();
    // a free-text column (process name) may contain ", "
    expect(splitRow('GPU-x, 12, my, app, 100', 4, 2)).toEqual(['GPU-x', '12', 'my, app', '100']);
    expect(splitRow('a, b\r', 2)).toEqual(['a', 'b']);
  });

  it('rejects a row with a bad column count or without an index', () => {
    const fields = ['index', 'uuid', 'name', 'utilization.gpu'];
    expect(parseGpuRow('0, GPU-a, NVIDIA H100, 5', fields)?.utilizationGpuPercent).toBe(5);
    expect(parseGpuRow('0, GPU-a, NVIDIA H100', fields)).toBeNull();
    expect(parseGpuRow('[N/A], GPU-a, NVIDIA H100, 5', fields)).toBeNull();
    expect(
      parseGpuRow('Unable to determine the device handle for GPU0000:01:00.0: Unknown Error', fields),
    ).toBeNull();
  });

  it('falls back to power.draw.instant, then average, when power.draw is N/A', () => {
    const fields = ['index', 'uuid', 'name', 'power.draw', 'power.draw.instant', 'power.draw.average'];
    expect(parseGpuRow('0, GPU-a, RTX 3060, [N/A], 11.63, 11.60', fields)?.powerDrawWatts).toBe(11.63);
    expect(parseGpuRow('0, GPU-a, RTX 3060, [N/A], [N/A], 11.60', fields)?.powerDrawWatts).toBe(11.6);
    expect(parseGpuRow('0, GPU-a, RTX 3060, [N/A], [N/A], [N/A]', fields)?.powerDrawWatts).toBeNull();
    const noDraw = ['index', 'uuid', 'name', 'power.draw.instant'];
    expect(parseGpuRow('0, GPU-a, RTX 3060, 142.33', noDraw)?.powerDrawWatts).toBe(142.33);
  });
});

describe('RoundAssembler (loop output has no separators)', () => {
  const rows = (n: number) => Array.from({ length: n }, (_, index) => ({ index }));

  it('ends a round when an index repeats', () => {
    const a = new RoundAssembler<{ index: number }>();
    const rounds: number[][] = [];
    for (const r of [...rows(3), ...rows(3), ...rows(2)]) {
      const done = a.push(r);
      if (done) rounds.push(done.map((x) => x.index));
    }
    // After the first round the size is known: the second round completes at its 3rd row.
    expect(rounds).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
    expect(a.pending).toBe(2);
    expect(a.flush()?.map((x) => x.index)).toEqual([0, 1]);
    expect(a.flush()).toBeNull();
  });

  it('a single GPU: each row is a round once the size is known', () => {
    const a = new RoundAssembler<{ index: number }>();
    expect(a.push({ index: 0 })).toBeNull();
    expect(a.push({ index: 0 })).toEqual([{ index: 0 }]);
    expect(a.push({ index: 0 })).toEqual([{ index: 0 }]);
  });

  it('quiet-timer flush ends a partial round', () => {
    const a = new RoundAssembler<{ index: number }>();
    a.push({ index: 0 });
    a.push({ index: 1 });
    expect(a.flush()).toHaveLength(2);
  });
});
