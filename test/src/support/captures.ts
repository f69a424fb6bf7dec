import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capturesDir } from './paths.ts';

/**
 * An independent reading of a capture's full `--query-gpu` CSV section (header + units), used as
 * the oracle for end-to-end tests: field name (without unit) → raw text of each GPU row.
 */
export function captureQueryGpu(file: string, state: 'idle' | 'load'): Record<string, string>[] {
  const lines = readFileSync(join(capturesDir, file), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(`# ${state} :: query-gpu`));
  if (start < 0) throw new Error(`no ${state} query-gpu section in ${file}`);
  let i = start + 1;
  while (i < lines.length && !lines[i]?.startsWith('#####')) i++;
  const header = (lines[i + 1] ?? '').split(', ').map((h) => h.replace(/ \[.*\]$/, '').trim());
  const rowsOut: Record<string, string>[] = [];
  for (let j = i + 2; j < lines.length; j++) {
    const line = lines[j] ?? '';
    if (line.startsWith('#') || line.trim() === '') break;
    const cells = line.split(', ');
    rowsOut.push(Object.fromEntries(header.map((h, k) => [h, (cells[k] ?? '').trim()])));
  }
  return rowsOut;
}

/** The number in a capture cell (`"631.95 W"` → 631.95); null for `[N/A]` and other tokens. */
export function cellNumber(cell: string | undefined): number | null {
  if (cell === undefined) return null;
  const m = /^-?\d+(\.\d+)?/.exec(cell.trim());
  return m ? Number(m[0]) : null;
}
