// Loaded with `--import` (NODE_OPTIONS) into a process under a benchmark: records a CPU profile
// (`BENCH_CPU_PROF=<dir>`) and/or a sampling heap profile (`BENCH_HEAP_PROF=<dir>`) through the
// inspector and writes them when the process exits (`--cpu-prof` is not allowed in NODE_OPTIONS).
// The heap profile counts every sampled allocation, also those collected since (where the garbage
// comes from); `BENCH_HEAP_PROF_LIVE=1`: only what is still live at exit (what holds memory).
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const cpuDir = process.env.BENCH_CPU_PROF;
const heapDir = process.env.BENCH_HEAP_PROF;
const session = new Session();
session.connect();
const post = (method, params) =>
  new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))),
  );
if (cpuDir) {
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 1000 });
  await post('Profiler.start');
}
if (heapDir) {
  await post('HeapProfiler.enable');
  const all = process.env.BENCH_HEAP_PROF_LIVE !== '1';
  await post('HeapProfiler.startSampling', {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: all,
    includeObjectsCollectedByMinorGC: all,
  });
}
const name = `${process.pid}-${Date.now()}`;
// Inspector calls on the main thread's own session complete synchronously.
process.on('exit', () => {
  if (cpuDir) {
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      mkdirSync(cpuDir, { recursive: true });
      writeFileSync(join(cpuDir, `${name}.cpuprofile`), JSON.stringify(res.profile));
    });
  }
  if (heapDir) {
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (err) return;
      mkdirSync(heapDir, { recursive: true });
      writeFileSync(join(heapDir, `${name}.heapprofile`), JSON.stringify(res.profile));
    });
  }
});
