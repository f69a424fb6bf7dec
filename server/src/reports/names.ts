import type { Report } from '@gpupulse/protocol';

/** `gpupulse-report-2026-11-centre.csv`, `gpupulse-report-2026-W47-kist.pdf` (ids are file-safe). */
export function csvFilename(r: Report, ext: string): string {
  return `gpupulse-report-${r.period}-${r.institution ?? 'centre'}.${ext}`;
}
