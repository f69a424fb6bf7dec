// The soak's load: simulated nodes with agent delivery rules (test/src/support/sim-load.ts) in a
// process of their own. Prints a JSON line of totals every 5 s; on SIGTERM stops sampling, sends
// what is still pending, prints {"type":"final",…} and exits.
//   tsx bench/soak-load.ts <url> <token> <nodes> <gpusPerNode> <prefix>
import { startSimLoad } from '../src/support/sim-load.ts';

const [url, token, nodes, gpus, prefix] = process.argv.slice(2);
if (!url || !token || !nodes || !gpus || !prefix) {
  process.stderr.write('usage: soak-load <url> <token> <nodes> <gpusPerNode> <prefix>\n');
  process.exit(2);
}
const load = startSimLoad({
  url,
  token,
  nodes: Number(nodes),
  gpusPerNode: Number(gpus),
  intervalMs: 1000,
  prefix,
  seed: 1,
  connectWithinMs: 5000,
  // a fleet comes up over minutes; the soak measures the steady state after everyone is in
  holdSamplingUntilConnectedMs: 300_000,
});
const print = (type: string) =>
  process.stdout.write(`${JSON.stringify({ type, at: Date.now(), ...load.totals() })}\n`);
const timer = setInterval(() => print('totals'), 5000);
process.once('SIGTERM', () => {
  clearInterval(timer);
  load.stopSampling();
  load
    .drain(Number(process.env.SOAK_DRAIN_MS ?? 900_000))
    .catch((err: Error) => process.stderr.write(`${err.message}\n`))
    .finally(() => {
      print('final');
      load.close();
      setTimeout(() => process.exit(0), 200);
    });
});
