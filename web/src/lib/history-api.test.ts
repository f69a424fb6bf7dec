import { describe, expect, it } from 'vitest';
import { getJson, isHistoryResponse, isNodeProcesses, processesUrl, usageUrl } from './history-api.ts';

const respond = (status: number, body: unknown) => async () =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('history api', () => {
  it('tells ok, missing and error apart', async () => {
    const ok = { scope: 'gpu', id: 'x', tier: 'raw', from: 0, to: 1, stepMs: 1, series: [] };
    expect(await getJson('/h', isHistoryResponse, { fetch: respond(200, ok) })).toEqual({
      kind: 'ok',
      data: ok,
    });
    expect(await getJson('/h', isHistoryResponse, { fetch: respond(404, {}) })).toEqual({
      kind: 'missing',
      status: 404,
    });
    expect(await getJson('/h', isHistoryResponse, { fetch: respond(500, {}) })).toMatchObject({
      kind: 'error',
      status: 500,
    });
    expect(await getJson('/h', isHistoryResponse, { fetch: respond(200, { nope: 1 }) })).toMatchObject({
      kind: 'error',
    });
    const failing = async () => {
      throw new TypeError('network down');
    };
    expect(await getJson('/h', isHistoryResponse, { fetch: failing })).toEqual({
      kind: 'error',
      message: 'network down',
    });
  });

  it('encodes node names in the processes path', () => {
    expect(processesUrl('a/b <img> "q" 노드')).toBe(
      `/api/v1/nodes/${encodeURIComponent('a/b <img> "q" 노드')}/processes`,
    );
    expect(processesUrl('../x')).toBe('/api/v1/nodes/..%2Fx/processes');
    expect(isNodeProcesses({ processes: [{ pid: 1, gpuUuid: 'GPU-1' }] })).toBe(true);
    expect(isNodeProcesses({ processes: [{ pid: '1' }] })).toBe(false);
  });

  it('builds usage URLs', () => {
    expect(usageUrl({ from: 0, to: 10.5, groupBy: 'institution', period: 'week', format: 'csv' })).toBe(
      '/api/v1/usage?from=0&to=10&groupBy=institution&period=week&format=csv',
    );
  });
});
