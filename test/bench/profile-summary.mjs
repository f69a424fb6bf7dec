// Summarises profiles written by the benchmarks (bench/profile-preload.mjs):
//   node test/bench/profile-summary.mjs <file.cpuprofile|file.heapprofile> [top=25]
// CPU: self time per function (and "(garbage collector)", "(program)", "(idle)") as % of the
// non-idle time, plus totals per source area (socket.io, zod, ingest, fleet, alerts …).
// Heap (sampling): bytes allocated per allocation site (self), as % of all sampled bytes.
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary.mjs <file.cpuprofile|file.heapprofile> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8'));

const AREAS = [
  ['socket.io / engine.io / ws', /node_modules\/(\.pnpm\/)?(socket\.io|engine\.io|ws|@socket\.io)/],
  ['zod (validation)', /node_modules\/(\.pnpm\/)?zod/],
  ['influx client escapers', /influxdb-client/],
  ['pino', /pino/],
  ['server/src/ingest', /server\/src\/ingest\//],
  ['server/src/socket', /server\/src\/socket\//],
  ['server/src/fleet', /server\/src\/fleet\//],
  ['server/src/alerts', /server\/src\/alerts\//],
  ['server/src/rollups', /server\/src\/rollups\//],
  ['server/src/storage', /server\/src\/storage\//],
  ['server/src/usage+accounting', /server\/src\/(usage|accounting)\//],
  ['server/src/cluster', /server\/src\/cluster\//],
  ['server/src (other)', /server\/src\//],
  ['protocol/src', /protocol\/src\//],
  ['node internals', /^node:|^internal\//],
];
const areaOf = (url) => {
  if (!url) return '(native / VM)';
  for (const [name, re] of AREAS) if (re.test(url)) return name;
  return '(other)';
};
const short = (url) => url.replace(/^.*\/(node_modules\/(\.pnpm\/)?)?/, '').replace(/^file:\/\//, '');
const pct = (n, d) => `${((100 * n) / d).toFixed(1)} %`;

if (file.endsWith('.cpuprofile')) {
  const self = new Map();
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of prof.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  let total = 0;
  let idle = 0;
  const area = new Map();
  for (const [id, c] of counts) {
    const n = byId.get(id);
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') {
      idle += c;
      continue;
    }
    total += c;
    const key = `${functionName || '(anonymous)'} ${url ? `${short(url)}:${lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + c);
    const a = functionName.startsWith('(') ? functionName : areaOf(url);
    area.set(a, (area.get(a) ?? 0) + c);
  }
  const secs = (prof.endTime - prof.startTime) / 1e6;
  console.log(`${file}: ${secs.toFixed(0)} s, busy ${pct(total, total + idle)} of the main thread`);
  console.log('\nby area (self time, % of busy):');
  for (const [k, v] of [...area].sort((a, b) => b[1] - a[1]))
    console.log(`  ${pct(v, total).padStart(7)}  ${k}`);
  console.log(`\ntop ${top} functions (self time, % of busy):`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(v, total).padStart(7)}  ${k}`);
} else {
  const sites = new Map();
  const area = new Map();
  let total = 0;
  const walk = (n) => {
    const bytes = n.selfSize ?? 0;
    if (bytes > 0) {
      const { functionName, url, lineNumber } = n.callFrame;
      const key = `${functionName || '(anonymous)'} ${url ? `${short(url)}:${lineNumber + 1}` : ''}`.trim();
      sites.set(key, (sites.get(key) ?? 0) + bytes);
      const a = areaOf(url);
      area.set(a, (area.get(a) ?? 0) + bytes);
      total += bytes;
    }
    for (const c of n.children ?? []) walk(c);
  };
  walk(prof.head);
  console.log(`${file}: ${(total / 2 ** 20).toFixed(1)} MiB in sampled allocations`);
  console.log('\nby area:');
  for (const [k, v] of [...area].sort((a, b) => b[1] - a[1]))
    console.log(`  ${pct(v, total).padStart(7)}  ${k}`);
  console.log(`\ntop ${top} allocation sites:`);
  for (const [k, v] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`  ${pct(v, total).padStart(7)}  ${(v / 2 ** 20).toFixed(1).padStart(6)} MiB  ${k}`);
}
