import type { Alert, ProjectUsage } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import {
  alertLink,
  compareAlerts,
  filterAlerts,
  gpusWithErrorAlerts,
  MAX_RESOLVED,
  mergeAlerts,
  replaceAlerts,
} from './alerts.ts';
import { type ProjectRow, sortProjectRows } from './project-usage.ts';
import { fillBin, projectColor, UNASSIGNED_COLOR } from './wall-colors.ts';
import { headlineFromTotals } from './wall-headline.ts';

function alert(id: string, o: Partial<Alert> = {}): Alert {
  return {
    id,
    rule: 'gpu_temperature_high',
    severity: 'warning',
    state: 'firing',
    node: 'rack-a-0001',
    gpuUuid: null,
    gpuIndex: 0,
    project: null,
    message: 'm',
    value: 90,
    threshold: 85,
    startedAt: 1000,
    endedAt: null,
    ...o,
  };
}

describe('alerts', () => {
  it('sorts firing first, then severity, then newest', () => {
    const list = [
      alert('r', { state: 'resolved', endedAt: 5000 }),
      alert('w', { startedAt: 3000 }),
      alert('c', { severity: 'critical', startedAt: 1000 }),
      alert('w2', { startedAt: 4000 }),
    ].sort(compareAlerts);
    expect(list.map((a) => a.id)).toEqual(['c', 'w2', 'w', 'r']);
  });

  it('filters by state, severity, rule and node substring', () => {
    const list = [
      alert('a', { node: 'rack-a-0001' }),
      alert('b', { node: 'rack-b-0002', severity: 'critical', rule: 'node_offline', gpuIndex: null }),
      alert('c', { state: 'resolved', endedAt: 2 }),
    ];
    const f = { state: 'all', severity: 'all', rule: '', node: '' } as const;
    expect(filterAlerts(list, f)).toHaveLength(3);
    expect(filterAlerts(list, { ...f, state: 'firing' }).map((a) => a.id)).toEqual(['a', 'b']);
    expect(filterAlerts(list, { ...f, severity: 'critical' }).map((a) => a.id)).toEqual(['b']);
    expect(filterAlerts(list, { ...f, rule: 'node_offline' }).map((a) => a.id)).toEqual(['b']);
    expect(filterAlerts(list, { ...f, node: 'RACK-B' }).map((a) => a.id)).toEqual(['b']);
  });

  it('merges changes and keeps resolved alerts bounded', () => {
    const m = new Map<string, Alert>();
    replaceAlerts(m, [alert('a')]);
    mergeAlerts(m, [alert('a', { state: 'resolved', endedAt: 9 })]);
    expect(m.get('a')?.state).toBe('resolved');
    mergeAlerts(
      m,
      Array.from({ length: MAX_RESOLVED + 50 }, (_, i) =>
        alert(`r${i}`, { state: 'resolved', endedAt: 10 + i }),
      ),
    );
    expect(m.size).toBe(MAX_RESOLVED);
    expect(m.has(`r${MAX_RESOLVED + 49}`)).toBe(true);
    expect(m.has('a')).toBe(false);
  });

  it('links to the node or GPU detail, node names encoded', () => {
    expect(alertLink({ node: 'a b/c', gpuIndex: null })).toBe('/node/a%20b%2Fc');
    expect(alertLink({ node: '<img>', gpuIndex: 3 })).toBe('/node/%3Cimg%3E/gpu/3');
  });

  it('marks GPUs with firing XID/ECC alerts only', () => {
    const s = gpusWithErrorAlerts([
      alert('x', { rule: 'xid_error', gpuIndex: 2 }),
      alert('t', { rule: 'gpu_temperature_high', gpuIndex: 3 }),
      alert('old', { rule: 'ecc_uncorrectable', gpuIndex: 4, state: 'resolved' }),
    ]);
    expect([...s]).toEqual(['rack-a-0001/2']);
  });
});

describe('project usage', () => {
  it('sorts rows by any column, nulls last', () => {
    const row = (id: string, gpus: number, util: number | null): ProjectRow => ({
      id,
      name: id,
      color: '#000000',
      institution: null,
      info: null,
      usage: {
        project: id,
        gpusInUse: gpus,
        meanUtilizationPercent: util,
        users: [],
        jobs: [],
      } as unknown as ProjectUsage,
      quotaFraction: null,
    });
    const rows = [row('b', 2, null), row('a', 5, 10), row('c', 1, 90)];
    expect(sortProjectRows(rows, 'gpusInUse', 'desc').map((r) => r.id)).toEqual(['a', 'b', 'c']);
    expect(sortProjectRows(rows, 'meanUtilizationPercent', 'desc').map((r) => r.id)).toEqual(['c', 'a', 'b']);
    expect(sortProjectRows(rows, 'meanUtilizationPercent', 'asc').map((r) => r.id)).toEqual(['a', 'c', 'b']);
    expect(sortProjectRows(rows, 'project', 'asc').map((r) => r.id)).toEqual(['a', 'b', 'c']);
  });
});

describe('wall headline', () => {
  it('from the server totals', () => {
    const h = headlineFromTotals(
      {
        gpusTotal: 10,
        gpusInUse: 6,
        gpusIdleHeld: 1,
        gpusFree: 3,
        gpusOffline: 0,
        gpusUnknown: 0,
        meanUtilizationPercent: 55,
        powerDrawWatts: 4200,
        activeProjects: 3,
      },
      null,
    );
    expect(h).toMatchObject({ source: 'server', gpusBusy: 6, powerKilowatts: 4.2, firingAlerts: null });
  });
});

describe('wall colours', () => {
  it('bins utilization and temperature; unknown is its own code', () => {
    expect(fillBin('utilization', 0)).toBe(0);
    expect(fillBin('utilization', 100)).toBe(100);
    expect(fillBin('utilization', 150)).toBe(100);
    expect(fillBin('utilization', null)).toBe(254);
    expect(fillBin('temperature', 25)).toBe(0);
    expect(fillBin('temperature', 95)).toBe(100);
    expect(fillBin('temperature', 60)).toBe(50);
  });

  it('project colours: own valid colour, else a stable fallback; unassigned neutral', () => {
    expect(projectColor('p', '#123abc')).toBe('#123abc');
    expect(projectColor('p', 'red; background:url(x)')).toBe(projectColor('p', null));
    expect(projectColor('unassigned', null)).toBe(UNASSIGNED_COLOR);
    expect(projectColor('p1', null)).toBe(projectColor('p1', undefined));
  });
});
