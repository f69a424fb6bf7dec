// Reads the server's Prometheus /metrics into numbers a test can assert on.

export type MetricsSnapshot = Map<string, number>;

/** `name{labels}` → value for every sample line of /metrics (labels exactly as the server prints them). */
export async function readMetrics(url: string): Promise<MetricsSnapshot> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const out: MetricsSnapshot = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of every series of a metric (all label sets), 0 when absent. */
export function metricSum(
  m: MetricsSnapshot,
  name: string,
  labelFilter?: (labels: string) => boolean,
): number {
  let sum = 0;
  for (const [k, v] of m) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n !== name) continue;
    if (labelFilter && !labelFilter(brace < 0 ? '' : k.slice(brace))) continue;
    sum += v;
  }
  return sum;
}

/** The metric's series as `{labels} value` lines (for failure messages and reports). */
export function metricLines(m: MetricsSnapshot, name: string): string[] {
  return [...m].filter(([k]) => k === name || k.startsWith(`${name}{`)).map(([k, v]) => `${k} ${v}`);
}

/** Resident set size of a process in MiB, from /proc (VmRSS). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}
