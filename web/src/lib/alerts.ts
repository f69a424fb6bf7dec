import type { Alert, AlertSeverity } from '@gpupulse/protocol';

/** Alerts kept in the browser: every firing one (up to this many) … */
export const MAX_FIRING = 5000;
/** … and this many most recently resolved. */
export const MAX_RESOLVED = 500;

export type AlertMap = Map<string, Alert>;

const SEVERITY_RANK: Record<AlertSeverity, number> = { critical: 0, warning: 1, info: 2 };

/** Firing first, then by severity, then newest first. */
export function compareAlerts(a: Alert, b: Alert): number {
  if (a.state !== b.state) return a.state === 'firing' ? -1 : 1;
  const s = SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
  if (s !== 0) return s;
  const ta = a.state === 'resolved' ? (a.endedAt ?? a.startedAt) : a.startedAt;
  const tb = b.state === 'resolved' ? (b.endedAt ?? b.startedAt) : b.startedAt;
  return tb - ta;
}

/** Drops the oldest resolved alerts beyond the bound (and firing beyond theirs). In place. */
export function pruneAlerts(alerts: AlertMap): void {
  const resolved: Alert[] = [];
  const firing: Alert[] = [];
  for (const a of alerts.values()) (a.state === 'firing' ? firing : resolved).push(a);
  if (resolved.length > MAX_RESOLVED) {
    resolved.sort((a, b) => (b.endedAt ?? b.startedAt) - (a.endedAt ?? a.startedAt));
    for (const a of resolved.slice(MAX_RESOLVED)) alerts.delete(a.id);
  }
  if (firing.length > MAX_FIRING) {
    firing.sort((a, b) => b.startedAt - a.startedAt);
    for (const a of firing.slice(MAX_FIRING)) alerts.delete(a.id);
  }
}

export function replaceAlerts(alerts: AlertMap, list: readonly Alert[]): void {
  alerts.clear();
  for (const a of list) alerts.set(a.id, a);
  pruneAlerts(alerts);
}

export function mergeAlerts(alerts: AlertMap, changed: readonly Alert[]): void {
  for (const a of changed) alerts.set(a.id, a);
  pruneAlerts(alerts);
}

export interface AlertFilter {
  state: 'all' | 'firing' | 'resolved';
  severity: 'all' | AlertSeverity;
  rule: string;
  /** Substring of the node name (case-insensitive); '' = any. */
  node: string;
}

export const DEFAULT_ALERT_FILTER: AlertFilter = { state: 'all', severity: 'all', rule: '', node: '' };

export function filterAlerts(list: readonly Alert[], f: AlertFilter): Alert[] {
  const node = f.node.trim().toLowerCase();
  return list.filter(
    (a) =>
      (f.state === 'all' || a.state === f.state) &&
      (f.severity === 'all' || a.severity === f.severity) &&
      (f.rule === '' || a.rule === f.rule) &&
      (node === '' || a.node.toLowerCase().includes(node)),
  );
}

/** The detail route of an alert's subject (the node/GPU views). */
export function alertLink(a: Pick<Alert, 'node' | 'gpuIndex'>): string {
  const node = `/node/${encodeURIComponent(a.node)}`;
  return a.gpuIndex === null ? node : `${node}/gpu/${a.gpuIndex}`;
}

/** Rules whose firing alerts mark a GPU with the error badge. */
export function isHardwareErrorRule(rule: string): boolean {
  return /xid|ecc|remap|retired|gpu_error/i.test(rule);
}

/** `node/index` keys of GPUs with a firing hardware-error alert. */
export function gpusWithErrorAlerts(alerts: Iterable<Alert>): Set<string> {
  const out = new Set<string>();
  for (const a of alerts)
    if (a.state === 'firing' && a.gpuIndex !== null && isHardwareErrorRule(a.rule))
      out.add(`${a.node}/${a.gpuIndex}`);
  return out;
}

/** Known rule ids that have localized text; others fall back to the server's message. */
export const KNOWN_RULES = [
  'gpu_temperature_high',
  'memory_temperature_high',
  'gpu_throttled',
  'ecc_uncorrectable',
  'remapped_rows',
  'xid_error',
  'gpu_stale',
  'node_offline',
  'gpu_idle_held',
] as const;

export function isKnownRule(rule: string): rule is (typeof KNOWN_RULES)[number] {
  return (KNOWN_RULES as readonly string[]).includes(rule);
}
