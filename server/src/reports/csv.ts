/** A report as CSV: one row per scope (centre/institution), institution, project and day. */
import type { Report, ReportTotals, ShareStatus } from '@gpupulse/protocol';

function cell(v: string): string {
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const n = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));

export const REPORT_CSV_HEADER =
  'period,section,key,institution,busy_gpu_hours,idle_held_gpu_hours,gpu_hours,energy_kwh,idle_held_energy_kwh,co2e_kg,idle_held_co2e_kg,agreed_gpu_hours,share_used_percent,over_share';

export function reportCsv(r: Report): string {
  const lines = [REPORT_CSV_HEADER];
  const row = (section: string, key: string, inst: string | null, t: ReportTotals, s: ShareStatus | null) =>
    lines.push(
      [
        r.period,
        section,
        cell(key),
        cell(inst ?? ''),
        n(t.busyGpuHours),
        n(t.idleHeldGpuHours),
        n(t.gpuHours),
        n(t.energyKWh),
        n(t.idleHeldEnergyKWh),
        n(t.co2eKg),
        n(t.idleHeldCo2eKg),
        n(s?.agreedGpuHours),
        n(s?.usedPercent),
        s ? String(s.overShare) : '',
      ].join(','),
    );
  row(
    r.institution === null ? 'centre' : 'institution',
    r.institution ?? 'centre',
    r.institution,
    r.totals,
    r.share,
  );
  if (r.institution === null)
    for (const i of r.institutions) row('institution', i.institution, i.institution, i.totals, i.share);
  for (const p of r.projects) row('project', p.project, p.institution, p.totals, p.share);
  for (const d of r.trend) row('day', new Date(d.start).toISOString(), r.institution, d.totals, null);
  row('previous', r.previous.period, r.institution, r.previous.totals, null);
  return `${lines.join('\r\n')}\r\n`;
}
