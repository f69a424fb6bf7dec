// Completeness over every capture: each metric the issue lists is collected (value or null, never
// missing), missing tokens become null; MIG devices from `-L` and the default table.
import { GpuMetricsSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  migDevicesByGpu,
  parseGpuCsv,
  parseHelpQuery,
  parseListGpus,
  parseMigTable,
  parseVersion,
  planGpuQuery,
} from './parse.ts';
import { captureFiles, readCapture, section } from './testdata.ts';

/** Every GpuMetrics key the agent collects (issue 3, "GPU telemetry"). */
const COLLECTED = [
  'utilizationGpuPercent',
  'utilizationMemoryPercent',
  'utilizationEncoderPercent',
  'utilizationDecoderPercent',
  'memoryUsedMiB',
  'memoryFreeMiB',
  'memoryTotalMiB',
  'memoryReservedMiB',
  'temperatureCelsius',
  'memoryTemperatureCelsius',
  'powerDrawWatts',
  'powerLimitWatts',
  'powerEnforcedLimitWatts',
  'clocksSmMHz',
  'clocksMemoryMHz',
  'clocksGraphicsMHz',
  'clocksMaxSmMHz',
  'clocksMaxMemoryMHz',
  'clocksMaxGraphicsMHz',
  'fanSpeedPercent',
  'pstate',
  'clocksEventReasonsActive',
  'eccModeCurrent',
  'eccErrorsCorrectedVolatile',
  'eccErrorsUncorrectedVolatile',
  'eccErrorsCorrectedAggregate',
  'eccErrorsUncorrectedAggregate',
  'retiredPagesPending',
  'remappedRowsPending',
  'remappedRowsFailure',
  'pcieLinkGenCurrent',
  'pcieLinkWidthCurrent',
  'persistenceMode',
  'computeMode',
  'migModeCurrent',
  'driverVersion',
  'serial',
  'pciBusId',
] as const;

const NULL_TOKENS =
  /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions|Requested functionality has been deprecated)\]?$/;

describe.each(captureFiles())('%s', (file) => {
  const sections = readCapture(file);
  const help = parseHelpQuery(section(sections, 'capabilities', 'help-query-gpu').body);
  const planned = planGpuQuery(help);

  it.each(['idle', 'load'])(
    '%s: every listed metric collected from the fields this driver supports',
    (state) => {
      const csv = section(sections, state, 'query-gpu').body;
      const header =
        csv
          .split('\n')[0]
          ?.split(', ')
          .map((h) => h.replace(/ \[.*\]$/, '')) ?? [];
      // our query is a subset of what the capture's full query holds (no unknown field → no exit 2)
      for (const f of planned) expect(header, f).toContain(f);
      const gpus = parseGpuCsv(csv);
      expect(gpus.length).toBeGreaterThan(0);
      for (const g of gpus) {
        GpuMetricsSchema.parse(g);
        for (const k of COLLECTED) expect(g, k).toHaveProperty(k);
        // a missing token is null, never a made-up value
        const row = csv.split('\n')[1]?.split(', ') ?? [];
        const util = row[header.indexOf('utilization.gpu')] ?? '';
        if (NULL_TOKENS.test(util.trim())) expect(g.utilizationGpuPercent).toBeNull();
        if (g.clocksEventReasonsActive !== null) expect(Array.isArray(g.clocksEventReasons)).toBe(true);
      }
    },
  );

  it('-L and the default table: MIG devices only where MIG is enabled; versions', () => {
    const list = parseListGpus(section(sections, 'capabilities', 'list (-L)').body);
    expect(list.length).toBeGreaterThan(0);
    expect(list[0]?.uuid).toMatch(/^GPU-/);
    const table = section(sections, 'load', 'nvidia-smi (default table)').body;
    const mig = migDevicesByGpu(list, parseMigTable(table));
    const total = [...mig.values()].reduce((n, d) => n + d.length, 0);
    expect(total).toBe(file.includes('mig') ? 5 : 0);
    const v = parseVersion(section(sections, 'capabilities', 'version').body);
    expect(v.driverVersion).toBe(file.replace(/\.txt$/, '').split('__')[2]);
    expect(v.cudaVersion).toMatch(/^\d+\.\d+$/);
    expect(parseVersion(table).cudaVersion).toBe(v.cudaVersion);
  });
});

describe('MIG parsers', () => {
  it('-L lines with and without UUIDs; the table with N/A instance ids', () => {
    const list = parseListGpus(
      'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)\n  MIG 3g.20gb     Device  0: (UUID: MIG-bbbb)\n  MIG 1g.5gb      Device  1: (UUID: MIG-cccc)\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-dddd)\n',
    );
    expect(list.map((g) => [g.index, g.uuid, g.mig.length])).toEqual([
      [0, 'GPU-aaaa', 2],
      [1, 'GPU-dddd', 0],
    ]);
    const rows = parseMigTable(
      '| MIG devices:   |\n|  0    1   0   0  |   10MiB / 20096MiB    | 42      0 |\n|  0  N/A N/A   1  |   N/A    | 14 |\n',
    );
    expect(rows).toEqual([
      {
        gpu: 0,
        gpuInstanceId: 1,
        computeInstanceId: 0,
        migDevice: 0,
        memoryUsedMiB: 10,
        memoryTotalMiB: 20096,
      },
      {
        gpu: 0,
        gpuInstanceId: null,
        computeInstanceId: null,
        migDevice: 1,
        memoryUsedMiB: null,
        memoryTotalMiB: null,
      },
    ]);
    expect(migDevicesByGpu(list, rows).get(0)?.[1]).toMatchObject({ profile: '1g.5gb', gpuInstanceId: null });
  });
});
