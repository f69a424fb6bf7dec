import { describe, expect, it } from 'vitest';
import { ApiError, parseUsageParams, queryHistory } from '../src/history/history-api.ts';
import { MemoryBackend } from '../src/history/query-backend.ts';
import { MemoryStore } from '../src/storage/memory-store.ts';

const NOW = Date.UTC(2026, 11, 1, 12);
const deps = {
  backend: new MemoryBackend(new MemoryStore({ now: () => NOW })),
  policies: {},
  now: () => NOW,
};

async function refusal(query: string): Promise<ApiError> {
  const err = await queryHistory(deps, new URLSearchParams(query)).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, query).toBeInstanceOf(ApiError);
  return err as ApiError;
}

describe('history and usage parameters: hostile values get 400 naming the parameter', () => {
  it.each([
    ['scope=cluster&from=now-999999999d&to=now-999999998d', 'from must lie between 1970 and 2286'],
    ['scope=cluster&from=now-99999999999999999999999d', 'from must lie between 1970 and 2286'],
    ['scope=cluster&to=99999999999999', 'to must lie between 1970 and 2286'],
    ['scope=cluster&from=now-2000d', 'from: the range from … to is longer than 5 years'],
    ['scope=cluster&from=now-1h&to=now-2h', 'from must be before to'],
    ['scope=gpu&id=a%00b', 'id: must not contain control characters'],
    ['scope=node&id=a%0Ab', 'id: must not contain control characters'],
    [`scope=gpu&id=${'x'.repeat(300)}`, 'id'],
    ['scope=cluster&step=99999999999999w', 'step must be at most 366d'],
    ['scope=cluster&step=9999999999999999999999999', 'step must be at most 366d'],
    ['scope=cluster&step=-5s', 'step must be a positive duration'],
    ['scope=cluster&metrics=utilization,nope', 'metrics: unknown metric "nope"'],
    [`scope=cluster&metrics=${'m,'.repeat(200)}`, 'metrics'],
    ['scope=cluster&from=2026-13-45', 'from'],
  ])('%s', async (query, message) => {
    const err = await refusal(query);
    expect(err.status).toBe(400);
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toContain(message);
  });

  it('a step too small for the range grows so that no series exceeds 1500 points', async () => {
    const h = await queryHistory(deps, new URLSearchParams('scope=cluster&from=now-5h&step=1ms'));
    expect((5 * 3600_000) / h.stepMs).toBeLessThanOrEqual(1500);
    expect(h.series[0]!.points.length).toBeLessThanOrEqual(1501);
  });

  it.each([
    ['from=now-999999999d&to=now-999999998d', 'from must lie between 1970 and 2286'],
    ['from=now-1d&to=now-2d', 'from must be before to'],
    ['from=now-3000d', 'longer than 5 years'],
    ['groupBy=team', 'groupBy'],
  ])('usage: %s', (query, message) => {
    let err: unknown = null;
    try {
      parseUsageParams(new URLSearchParams(query), NOW, false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toContain(message);
  });
});
