import { describe, expect, it } from 'vitest';
import { csvCell, exportFileName, seriesToCsv, toCsv, usageToCsv } from './csv.ts';

describe('csv', () => {
  it('quotes commas, quotes and newlines, and defuses formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell(-3.5)).toBe('-3.5');
    expect(csvCell(null)).toBe('');
    expect(csvCell(Number.NaN)).toBe('');
    expect(csvCell(' padded ')).toBe('" padded "');
    expect(csvCell('한국어 프로젝트')).toBe('한국어 프로젝트');
  });

  it('builds CRLF rows with a header', () => {
    expect(
      toCsv(
        ['a', 'b'],
        [
          [1, 'x'],
          [null, 'y,z'],
        ],
      ),
    ).toBe('a,b\r\n1,x\r\n,"y,z"\r\n');
  });

  it('writes usage rows sorted by period then key', () => {
    const csv = usageToCsv({
      from: 0,
      to: 1,
      groupBy: 'project',
      period: 'week',
      rows: [
        {
          periodStart: Date.UTC(2026, 0, 12),
          key: 'b',
          busyGpuHours: 1.23456,
          idleHeldGpuHours: 0,
          gpuHours: 1.23456,
          energyKWh: 0.5,
        },
        {
          periodStart: Date.UTC(2026, 0, 5),
          key: 'z',
          busyGpuHours: 2,
          idleHeldGpuHours: 1,
          gpuHours: 3,
          energyKWh: 1,
        },
        {
          periodStart: Date.UTC(2026, 0, 12),
          key: 'a',
          busyGpuHours: 0,
          idleHeldGpuHours: 2,
          gpuHours: 2,
          energyKWh: 0,
        },
      ],
    });
    expect(csv.split('\r\n')).toEqual([
      'period_start,project,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh',
      '2026-01-05T00:00:00.000Z,z,2,1,3,1',
      '2026-01-12T00:00:00.000Z,a,0,2,2,0',
      '2026-01-12T00:00:00.000Z,b,1.235,0,1.235,0.5',
      '',
    ]);
  });

  it('aligns several series on their union of times', () => {
    const csv = seriesToCsv([
      {
        name: 'GPU 0',
        points: [
          [0, 1],
          [1000, 2],
        ],
      },
      {
        name: 'GPU 1',
        points: [
          [1000, null],
          [2000, 4],
        ],
      },
    ]);
    expect(csv.split('\r\n')).toEqual([
      'time,GPU 0,GPU 1',
      '1970-01-01T00:00:00.000Z,1,',
      '1970-01-01T00:00:01.000Z,2,',
      '1970-01-01T00:00:02.000Z,,4',
      '',
    ]);
  });

  it('makes safe file names', () => {
    expect(exportFileName('cluster utilization', 'csv', Date.UTC(2026, 4, 1))).toBe(
      'gpupulse-cluster-utilization-2026-05-01.csv',
    );
    expect(exportFileName('../<x>/', 'png', 0)).toBe('gpupulse-..-x-1970-01-01.png');
    expect(exportFileName('///', 'png', 0)).toBe('gpupulse-chart-1970-01-01.png');
  });
});
