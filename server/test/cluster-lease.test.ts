import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLease } from '../src/cluster/lease.ts';
import { closeRedis, connectRedis, type RedisClient } from '../src/cluster/redis.ts';
import { silentLogger } from '../src/logger.ts';
import { startRedis, type TestRedis } from './cluster-redis.ts';

let redis: TestRedis;
const clients: RedisClient[] = [];
const client = async () => {
  const c = await connectRedis(redis.url, silentLogger(), 'test');
  clients.push(c);
  return c;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clients) await closeRedis(c);
  await redis?.stop();
});

describe('RedisLease against a real redis-server', () => {
  it('one holder at a time; a dead holder is replaced within ttl + renew, with a larger fencing token', async () => {
    const fast = { ttlMs: 1000, renewMs: 200, safetyMs: 300 };
    const a = new RedisLease({ redis: await client(), name: 'takeover', owner: 'a', ...fast });
    const b = new RedisLease({ redis: await client(), name: 'takeover', owner: 'b', ...fast });
    const changes: string[] = [];
    b.onChange((h) => changes.push(`b:${h}`));
    await a.start();
    await b.start();
    expect(a.held()).toBe(true);
    expect(b.held()).toBe(false);
    const first = a.token()!;
    expect(first).toBeGreaterThan(0);
    // Renewals keep it: after several lease times, still a's.
    await sleep(2500);
    expect(a.held()).toBe(true);
    expect(b.held()).toBe(false);
    // "Kill" a: its client goes away without releasing (no renewals, no DEL).
    const aClient = clients[0]!;
    aClient.destroy();
    const died = Date.now();
    while (!b.held() && Date.now() - died < 5000) await sleep(20);
    const took = Date.now() - died;
    expect(b.held()).toBe(true);
    expect(took).toBeLessThan(1000 + 200 + 300);
    expect(b.token()!).toBeGreaterThan(first);
    expect(changes).toEqual(['b:true']);
    // a cannot renew: its own view gives up by itself before b could take over.
    expect(a.held()).toBe(false);
    await b.close();
    await a.close();
  });

  it('a holder that cannot renew stops acting before the lease runs out in Redis (fencing by time)', async () => {
    let now = 1_000_000;
    const c = await client();
    const a = new RedisLease({
      redis: c,
      name: 'clock',
      owner: 'a',
      ttlMs: 5000,
      renewMs: 1500,
      safetyMs: 1000,
      now: () => now,
    });
    await a.step();
    expect(a.held()).toBe(true);
    const lost: boolean[] = [];
    a.onChange((h) => lost.push(h));
    now += 3999;
    expect(a.held()).toBe(true);
    now += 2; // renewedAt + ttl - safety passed without a renewal
    expect(a.held()).toBe(false);
    expect(a.token()).toBeNull();
    expect(lost).toEqual([false]);
    // Redis still has it (1 s of safety left); nobody else can take it yet.
    const b = new RedisLease({
      redis: c,
      name: 'clock',
      owner: 'b',
      ttlMs: 5000,
      renewMs: 1500,
      safetyMs: 1000,
    });
    await b.step();
    expect(b.held()).toBe(false);
    await b.close();
    await a.close();
  });

  it('a deposed holder cannot renew over the new holding; close() hands the lease over at once', async () => {
    const c = await client();
    const a = new RedisLease({
      redis: c,
      name: 'fence',
      owner: 'a',
      ttlMs: 3000,
      renewMs: 500,
      safetyMs: 500,
    });
    const b = new RedisLease({
      redis: c,
      name: 'fence',
      owner: 'b',
      ttlMs: 3000,
      renewMs: 500,
      safetyMs: 500,
    });
    await a.step();
    const t1 = a.token()!;
    // Someone deletes the key (expiry while a was stalled): b takes it; a's renewal must fail.
    await c.del('gpupulse:lease:fence');
    await b.step();
    expect(b.token()).toBe(t1 + 1);
    await a.step();
    expect(a.held()).toBe(false);
    expect(await c.get('gpupulse:lease:fence')).toBe(`b:${t1 + 1}`);
    await b.close();
    expect(await c.get('gpupulse:lease:fence')).toBeNull();
    await a.step();
    expect(a.token()).toBe(t1 + 2);
    await a.close();
  });
});
