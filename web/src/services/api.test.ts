import { HistoryResponseSchema, NodeProcessesSchema } from '@gpupulse/protocol';
import { describe, expect, it } from 'vitest';
import { getApi, processesUrl, usageUrl } from './api.ts';

const respond = (status: number, body: unknown) => async () =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('the one API client', () => {
  it('tells ok, missing and error apart, checked against the protocol schema', async () => {
    const ok = { scope: 'gpu', id: 'x', tier: 'raw', from: 0, to: 1, stepMs: 1, series: [] };
    expect(await getApi('/h', HistoryResponseSchema, { fetch: respond(200, ok) })).toEqual({
      kind: 'ok',
      data: ok,
    });
    expect(await getApi('/h', HistoryResponseSchema, { fetch: respond(404, {}) })).toEqual({
      kind: 'missing',
      status: 404,
    });
    expect(await getApi('/h', HistoryResponseSchema, { fetch: respond(500, {}) })).toMatchObject({
      kind: 'error',
      status: 500,
    });
    const bad = await getApi('/h', HistoryResponseSchema, { fetch: respond(200, { ...ok, tier: 'weekly' }) });
    expect(bad.kind).toBe('error');
    expect(bad.kind === 'error' && bad.message).toMatch(/unexpected response at tier/);
    const failing = async () => {
      throw new TypeError('network down');
    };
    expect(await getApi('/h', HistoryResponseSchema, { fetch: failing })).toEqual({
      kind: 'error',
      message: 'network down',
    });
  });

  it('checks processes answers and encodes node names in their path', async () => {
    expect(processesUrl('a/b <img> "q" 노드')).toBe(
      `/api/v1/nodes/${encodeURIComponent('a/b <img> "q" 노드')}/processes`,
    );
    expect(processesUrl('../x')).toBe('/api/v1/nodes/..%2Fx/processes');
    const good = {
      serverTime: 1,
      node: 'n',
      processes: [
        { gpuUuid: 'GPU-1', pid: 1, usedMemoryMiB: 10, name: 'python', project: 'p', redacted: ['env'] },
      ],
    };
    expect((await getApi('/p', NodeProcessesSchema, { fetch: respond(200, good) })).kind).toBe('ok');
    const bad = { ...good, processes: [{ pid: '1' }] };
    expect((await getApi('/p', NodeProcessesSchema, { fetch: respond(200, bad) })).kind).toBe('error');
  });

  it('builds usage URLs', () => {
    expect(usageUrl({ from: 0, to: 10.5, groupBy: 'institution', period: 'week', format: 'csv' })).toBe(
      '/api/v1/usage?from=0&to=10&groupBy=institution&period=week&format=csv',
    );
  });
});
