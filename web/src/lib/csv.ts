/**
 * CSV for the chart exports (RFC 4180: comma, CRLF, quotes doubled). Text cells that a
 * spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) get a leading `'`.
 */
import type { UsageResponse } from '@gpupulse/protocol';
import type { Point } from './history.ts';

export type CsvCell = string | number | boolean | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let s = String(value);
  if (typeof value === 'string' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(header: readonly string[], rows: readonly (readonly CsvCell[])[]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

/** One row per period and group: the usage API's own columns, times as ISO 8601 (UTC). */
export function usageToCsv(res: UsageResponse): string {
  return toCsv(
    ['period_start', res.groupBy, 'busy_gpu_hours', 'idle_held_gpu_hours', 'gpu_hours', 'energy_kwh'],
    [...res.rows]
      .sort((a, b) => a.periodStart - b.periodStart || a.key.localeCompare(b.key))
      .map((r) => [
        new Date(r.periodStart).toISOString(),
        r.key,
        round(r.busyGpuHours),
        round(r.idleHeldGpuHours),
        round(r.gpuHours),
        round(r.energyKWh),
      ]),
  );
}

/** Several time series side by side: `time, <name 1>, <name 2>, …` (empty cell = no value). */
export function seriesToCsv(series: readonly { name: string; points: readonly Point[] }[]): string {
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const lookup = series.map((s) => new Map(s.points.map(([t, v]) => [t, v])));
  return toCsv(
    ['time', ...series.map((s) => s.name)],
    times.map((t) => [
      new Date(t).toISOString(),
      ...lookup.map((m) => (m.has(t) ? round(m.get(t) ?? null) : null)),
    ]),
  );
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 1000) / 1000;
}

/** `gpupulse-<name>-<yyyy-mm-dd>.<ext>`, with anything odd in the name replaced. */
export function exportFileName(name: string, ext: string, now = Date.now()): string {
  const safe = name.replace(/[^\p{L}\p{N}._-]+/gu, '-').replace(/^-+|-+$/g, '') || 'chart';
  return `gpupulse-${safe}-${new Date(now).toISOString().slice(0, 10)}.${ext}`;
}

/** Saves a blob or data URL through a temporary `<a download>` (browser only). */
export function downloadFile(fileName: string, data: Blob | string): void {
  const url = typeof data === 'string' ? data : URL.createObjectURL(data);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  if (typeof data !== 'string') setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function downloadCsv(fileName: string, csv: string): void {
  // A BOM so spreadsheet apps read Korean names as UTF-8.
  downloadFile(fileName, new Blob(['\ufeff', csv], { type: 'text/csv;charset=utf-8' }));
}
