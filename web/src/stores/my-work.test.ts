import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { gpu, node } from '../test/fixtures.ts';
import {
  candidates,
  filterCandidates,
  MY_WORK_STORAGE_KEY,
  matchGpus,
  parseStoredSelection,
  selectionFromQuery,
  selectionToQuery,
  useMyWorkStore,
} from './my-work.ts';

const nodes = [
  node('a', {
    gpus: [
      gpu(0, { users: ['kim.minji'], jobs: ['4812'], project: 'fu_video' }),
      gpu(1, { users: ['kim.minji', 'lee.jihoon'], jobs: ['4812', '4900'], project: 'fu_video' }),
    ],
  }),
  node('b', {
    status: 'stale',
    gpus: [gpu(0, { users: ['lee.jihoon'], jobs: ['4900'], project: 'ni_speech' }), gpu(1)],
  }),
];

describe('My work selection', () => {
  it('reads and writes the URL query', () => {
    expect(selectionFromQuery({ user: 'kim.minji' })).toEqual({ kind: 'user', value: 'kim.minji' });
    expect(selectionFromQuery({ job: ['4812', '9'] })).toEqual({ kind: 'job', value: '4812' });
    expect(selectionFromQuery({ project: '  ', job: '1' })).toEqual({ kind: 'job', value: '1' });
    expect(selectionFromQuery({ project: 'x'.repeat(300) })).toBeNull();
    expect(selectionFromQuery({ other: 'x' })).toBeNull();
    expect(selectionToQuery({ kind: 'project', value: 'fu_video' })).toEqual({ project: 'fu_video' });
    expect(selectionToQuery(null)).toEqual({});
  });

  it('parses stored choices defensively', () => {
    expect(parseStoredSelection('{"kind":"user","value":"kim.minji"}')).toEqual({
      kind: 'user',
      value: 'kim.minji',
    });
    expect(parseStoredSelection('{"kind":"root","value":"x"}')).toBeNull();
    expect(parseStoredSelection('not json')).toBeNull();
    expect(parseStoredSelection('null')).toBeNull();
    expect(parseStoredSelection(null)).toBeNull();
  });

  it('finds the GPUs of a user, project or job', () => {
    const ids = (s: Parameters<typeof matchGpus>[1]) =>
      matchGpus(nodes, s).map((x) => `${x.node}/${x.gpu.index}`);
    expect(ids({ kind: 'user', value: 'kim.minji' })).toEqual(['a/0', 'a/1']);
    expect(ids({ kind: 'job', value: '4900' })).toEqual(['a/1', 'b/0']);
    expect(ids({ kind: 'project', value: 'ni_speech' })).toEqual(['b/0']);
    expect(matchGpus(nodes, { kind: 'project', value: 'ni_speech' })[0]?.nodeDown).toBe(true);
    expect(ids(null)).toEqual([]);
  });

  it('offers candidates with GPU counts and localized project names', () => {
    const meta = {
      projects: [
        {
          id: 'fu_video',
          name: { en: 'Video understanding', ko: '영상 이해' },
          institution: null,
          area: null,
          color: null,
          owner: null,
          quotaGpus: null,
        },
        {
          id: 'ce_music',
          name: { en: 'Music' },
          institution: null,
          area: null,
          color: null,
          owner: null,
          quotaGpus: null,
        },
      ],
      institutions: [],
      areas: [],
    };
    const all = candidates(nodes, meta, 'ko');
    expect(all.map((c) => `${c.kind}:${c.value}:${c.gpus}`)).toEqual([
      'user:kim.minji:2',
      'user:lee.jihoon:2',
      'project:ce_music:0',
      'project:fu_video:2',
      'project:ni_speech:1',
      'job:4812:2',
      'job:4900:2',
    ]);
    expect(all.find((c) => c.value === 'fu_video')?.label).toBe('영상 이해');
    expect(filterCandidates(all, '영상').map((c) => c.value)).toEqual(['fu_video']);
    expect(filterCandidates(all, 'JI').map((c) => c.value)).toEqual(['kim.minji', 'lee.jihoon']);
    expect(filterCandidates(all, 'mi').map((c) => c.value)).toEqual(['kim.minji']);
    expect(filterCandidates(all, '48').map((c) => c.value)).toEqual(['4812']);
  });
});

describe('useMyWorkStore', () => {
  beforeEach(() => {
    const mem = new Map<string, string>();
    vi.stubGlobal('localStorage', {
      getItem: (k: string) => mem.get(k) ?? null,
      setItem: (k: string, v: string) => mem.set(k, v),
    });
    setActivePinia(createPinia());
  });

  it('remembers the choice in localStorage', async () => {
    const store = useMyWorkStore();
    expect(store.selection).toBeNull();
    store.select({ kind: 'job', value: '4812' });
    await Promise.resolve();
    expect(localStorage.getItem(MY_WORK_STORAGE_KEY)).toBe('{"kind":"job","value":"4812"}');
    setActivePinia(createPinia());
    expect(useMyWorkStore().selection).toEqual({ kind: 'job', value: '4812' });
  });
});
