/** Project rows of the Projects view (the server's usage with the projects file's names) and their sorting. */
import type { Localized, ProjectInfo, ProjectUsage } from '@gpupulse/protocol';

/** A project's display name in the locale: that language, else the other, else the id. */
export function localizedName(name: Localized | undefined, locale: string, fallback: string): string {
  if (!name) return fallback;
  const own = locale.startsWith('ko') ? name.ko : name.en;
  return own || name.en || name.ko || fallback;
}

export type ProjectSortKey =
  | 'project'
  | 'institution'
  | 'gpusInUse'
  | 'gpusIdleHeld'
  | 'meanUtilizationPercent'
  | 'memoryUsedMiB'
  | 'powerDrawWatts'
  | 'users'
  | 'jobs'
  | 'gpuHoursToday'
  | 'quota';

export interface ProjectRow {
  id: string;
  name: string;
  color: string;
  institution: string | null;
  info: ProjectInfo | null;
  usage: ProjectUsage;
  /** gpusInUse / quotaGpus, or null without a quota. */
  quotaFraction: number | null;
}

function sortValue(row: ProjectRow, key: ProjectSortKey): number | string | null {
  switch (key) {
    case 'project':
      return row.name;
    case 'institution':
      return row.institution;
    case 'users':
      return row.usage.users?.length ?? null;
    case 'jobs':
      return row.usage.jobs?.length ?? null;
    case 'quota':
      return row.quotaFraction;
    default:
      return row.usage[key];
  }
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Sorted copy; nulls always last; ties by name. `unassigned` sorts like any other row. */
export function sortProjectRows(
  rows: readonly ProjectRow[],
  key: ProjectSortKey,
  dir: 'asc' | 'desc',
): ProjectRow[] {
  const sign = dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const va = sortValue(a, key);
    const vb = sortValue(b, key);
    if (va === null && vb !== null) return 1;
    if (vb === null && va !== null) return -1;
    let c = 0;
    if (typeof va === 'string' && typeof vb === 'string') c = collator.compare(va, vb);
    else if (typeof va === 'number' && typeof vb === 'number') c = va - vb;
    return c !== 0 ? c * sign : collator.compare(a.name, b.name);
  });
}
