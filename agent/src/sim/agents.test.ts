// Simulated nodes are real agents: a real Socket.IO server on port 0 sees each node's own
// connection, handshake and inventory, valid samples with consecutive seqs, the agent's stats,
// and process lists as full lists and deltas that apply (protocol's rules) to the model's list.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AgentAuth,
  type AgentToServerEvents,
  applyProcessUpdate,
  type GpuProcess,
  processKey,
  type Sample,
  SamplesReportSchema,
  type ServerToAgentEvents,
} from '@gpupulse/protocol';
import { pino } from 'pino';
import { Server } from 'socket.io';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../logger.ts';
import { startSimAgents } from './agents.ts';
import { createSimFleet } from './fleet.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function startServer() {
  const http = createServer();
  const io = new Server<AgentToServerEvents, ServerToAgentEvents>(http);
  const byNode = new Map<string, Sample[]>();
  const auths: AgentAuth[] = [];
  const inventories = new Map<string, number>();
  io.of('/agent').on('connection', (socket) => {
    const auth = socket.handshake.auth as AgentAuth;
    auths.push(auth);
    socket.on('inventory:report', (inv, ack) => {
      inventories.set(auth.node, inv.gpus.length);
      ack({ ok: true, data: { serverTime: Date.now() } });
    });
    socket.on('samples:report', (report, ack) => {
      const parsed = SamplesReportSchema.parse(report); // throws on an invalid sample
      const list = byNode.get(auth.node) ?? [];
      list.push(...parsed.samples);
      byNode.set(auth.node, list);
      ack({ ok: true, data: { acked: parsed.samples.map((s) => s.seq), serverTime: Date.now() } });
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => io.close(() => r())));
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, io, byNode, auths, inventories };
}

describe('simulated agents', () => {
  it('each node is the real agent: own connection, inventory, valid samples, process deltas that apply', async () => {
    const server = await startServer();
    const fleet = createSimFleet({ nodes: 5, gpusPerNode: 4, prefix: 't', intervalMs: 100, seed: 9 });
    const sim = startSimAgents({
      fleet,
      server: server.url,
      token: 'tok',
      intervalMs: 100,
      logger: createSilentLogger(),
    });
    cleanup.push(() => sim.stop(200));
    const t0 = Date.now();
    while ([...server.byNode.values()].filter((l) => l.length >= 20).length < 5) {
      if (Date.now() - t0 > 15_000) throw new Error(`too few samples: ${JSON.stringify(sim.stats())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(new Set(server.auths.map((a) => a.node))).toEqual(new Set(fleet.nodeNames));
    expect(server.auths.every((a) => a.token === 'tok' && a.intervalMs === 100)).toBe(true);
    expect([...server.inventories.values()]).toEqual([4, 4, 4, 4, 4]);
    const stats = sim.stats();
    expect(stats).toMatchObject({ nodes: 5, connected: 5, rejected: 0 });
    expect(stats.acked).toBeGreaterThanOrEqual(100);

    for (const [node, samples] of server.byNode) {
      samples.sort((a, b) => a.seq - b.seq);
      expect(samples.map((s) => s.seq)).toEqual(samples.map((_, k) => k)); // seq from 0, none lost
      expect(samples[0]?.processesMode).toBe('full'); // a new connection starts with a full list
      const uuids = new Set(samples[0]?.gpus.map((g) => g.uuid));
      expect(uuids.size).toBe(4);
      let list: readonly GpuProcess[] = [];
      for (const s of samples) {
        expect(s.agent?.collectorErrors).toEqual({ 'sim-gpu': 0, 'sim-processes': 0 });
        expect(s.gpuCollector, node).toBe('ok');
        list = applyProcessUpdate(list, s);
        const keys = list.map(processKey);
        expect(new Set(keys).size).toBe(keys.length);
        for (const p of list) expect(uuids.has(p.gpuUuid)).toBe(true);
        // a GPU with memory in use has its job's process in the applied list, and vice versa
        for (const g of s.gpus) {
          const has = list.some((p) => p.gpuUuid === g.uuid);
          expect(has, `${node} seq ${s.seq} ${g.uuid}`).toBe((g.memoryUsedMiB ?? 0) > 0);
        }
      }
    }
    // most intervals change nothing about processes: they are left out, not resent
    const total = [...server.byNode.values()].reduce((n, l) => n + l.length, 0);
    const withProcesses = [...server.byNode.values()].flat().filter((s) => s.processes !== undefined).length;
    expect(withProcesses).toBeLessThan(total / 2);
  });

  it('a node disconnected by the server reconnects and sends a full process list again', async () => {
    const server = await startServer();
    const fleet = createSimFleet({ nodes: 1, gpusPerNode: 2, prefix: 'r', intervalMs: 100, seed: 4 });
    // On each connection, the seq of the next sample the node produces: read when the transport
    // logs 'connected to server', synchronously before it asks the collectors to resync. (The
    // backlog replayed on a reconnect was produced before it, as deltas: it cannot show the resync.)
    const connectSeqs: number[] = [];
    const logger = pino(
      { level: 'info' },
      {
        write(line: string) {
          if ((JSON.parse(line) as { msg?: string }).msg === 'connected to server') {
            connectSeqs.push(sim.agents[0]?.nextSeq ?? -1);
          }
        },
      },
    );
    const sim = startSimAgents({ fleet, server: server.url, token: 't', intervalMs: 100, logger });
    cleanup.push(() => sim.stop(200));
    const samples = () => server.byNode.get('r-0001') ?? [];
    const until = async (what: string, cond: () => boolean) => {
      const t0 = Date.now();
      while (!cond()) {
        if (Date.now() - t0 > 15_000) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until('5 samples', () => samples().length >= 5);
    for (const s of await server.io.of('/agent').fetchSockets()) s.disconnect(true);
    await until('the reconnect', () => connectSeqs.length >= 2 && server.auths.length >= 2);
    const resumeSeq = connectSeqs[1] as number;
    // the first sample produced after the reconnect, and every sample before it (the backlog);
    // a report the server took but whose ack the disconnect lost is resent: count each seq once
    const bySeq = () => [...new Map(samples().map((s) => [s.seq, s])).values()].sort((a, b) => a.seq - b.seq);
    await until(`seq ${resumeSeq}`, () => bySeq().filter((s) => s.seq <= resumeSeq).length === resumeSeq + 1);
    const got = bySeq().slice(0, resumeSeq + 1);
    expect(got.map((s) => s.seq)).toEqual([...Array(resumeSeq + 1).keys()]);
    expect(got[0]?.processesMode).toBe('full');
    const first = got[resumeSeq];
    expect(first?.processesMode, `seq ${resumeSeq}, the first sample after the reconnect`).toBe('full');
    // the full list matches the GPUs: a process on each GPU with memory in use, none on the others
    for (const g of first?.gpus ?? []) {
      expect(first?.processes?.some((p) => p.gpuUuid === g.uuid)).toBe((g.memoryUsedMiB ?? 0) > 0);
    }
  });
});
