import { escape as lpEscape } from '@influxdata/influxdb-client';
import { describe, expect, it } from 'vitest';
import { InfluxBackend } from '../src/history/query-backend.ts';
import { droppedCount, InfluxStore, quoteIdent } from '../src/storage/influx-store.ts';
import {
  BACKSLASH_REPLACEMENT,
  NAME_REPLACEMENT,
  storedName,
  storedString,
  toLineProtocol,
} from '../src/storage/line-protocol.ts';
import { startManagedInfluxd } from '../src/storage/managed-influxd.ts';
import { type MetricPoint, StoreWriteError } from '../src/storage/metric-store.ts';
import { samplePoints } from '../src/storage/schema.ts';
import { WriteBuffer } from '../src/storage/write-buffer.ts';
import { onCleanup, sample, tempDir, waitFor } from './helpers.ts';

async function influx(database = 'lp_test') {
  const managed = await startManagedInfluxd({ dataDir: await tempDir('gpupulse-influxd-') });
  onCleanup(() => managed.stop());
  const store = new InfluxStore({ url: managed.url, database, timeoutMs: 5000 });
  await store.init();
  return { managed, store };
}

const HOSTILE = [
  'plain',
  'a,b=c "d"',
  "o'q",
  'x = y',
  ' leading and trailing ',
  'ends with a backslash\\',
  '\\',
  '\\\\',
  'DOMAIN\\user',
  'two\\\\backslashes',
  'backslash\\ space',
  'backslash\\,comma',
  'backslash\\=equals',
  'new\nline',
  'cr\rlf\n',
  'tab\there',
  'nul\u0000byte',
  '\u0000',
  'bell\u0007 del\u007f c1\u0085',
  'emoji 🚀🔥 and flag 🇰🇷',
  'family 👩‍👩‍👧 (ZWJ)',
  '노드 서버-1 한글',
  '日本語のノード',
  'zero\u200bwidth and bom\ufeff',
  'nbsp\u00a0and ideographic\u3000space',
  'replacement \ufffd char',
  'lone surrogate \ud800 here',
  '"',
  '=',
  ',',
  '#comment-like',
  `long-${'x'.repeat(250)}`,
  `${'한'.repeat(256)}`,
];

/** Deterministic random strings over an alphabet of everything line protocol finds hard. */
function randomStrings(n: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const alphabet = [
    ...'ab Z9,= "\'\\\n\r\t\u0000\u001f#_-.:/',
    '🚀',
    '한',
    '\u200d',
    '\u00a0',
    'é',
    '\ufffd',
  ];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let str = '';
    const len = 1 + Math.floor(rnd() * 24);
    for (let j = 0; j < len; j++) str += alphabet[Math.floor(rnd() * alphabet.length)]!;
    out.push(str);
  }
  return out;
}

describe('storedName: what InfluxDB cannot store portably is replaced, nothing else', () => {
  it('keeps printable names (quotes, commas, =, spaces, emoji, Hangul, lone ordinary backslashes)', () => {
    for (const s of ['a,b=c "d"', "o'q", 'x = y', 'emoji 🚀🔥', '노드 서버', 'DOMAIN\\user', 'a\\b\\c'])
      expect(storedName(s)).toBe(s);
  });
  it('replaces non-printable characters and backslashes InfluxDB would read as escapes', () => {
    expect(storedName('a\u0000b\nc\td\u200de\u00a0f\ufffd')).toBe(
      'a?b?c?d?e?f?'.replaceAll('?', NAME_REPLACEMENT),
    );
    expect(storedName('end\\')).toBe(`end${BACKSLASH_REPLACEMENT}`);
    expect(storedName('a\\\\b')).toBe(`a${BACKSLASH_REPLACEMENT}\\b`);
    expect(storedName('a\\ b\\,c\\=d')).toBe(
      `a${BACKSLASH_REPLACEMENT} b${BACKSLASH_REPLACEMENT},c${BACKSLASH_REPLACEMENT}=d`,
    );
    expect(storedName('\ud800x')).toBe(`${NAME_REPLACEMENT}x`);
  });
  it('leaves out integers outside int64 and unrepresentable timestamps, and counts them', () => {
    const stats = { fieldsDropped: 0, pointsDropped: 0, lastReason: null };
    const line = toLineProtocol(
      {
        measurement: 'm',
        tags: {},
        ints: { big: 2 ** 63, ok: -(2 ** 62), inf: Infinity },
        floats: { nan: NaN },
        ts: 1,
      },
      stats,
    );
    expect(line).toBe(`m ok=${-(2 ** 62)}i 1`);
    expect(stats.fieldsDropped).toBe(3);
    expect(toLineProtocol({ measurement: 'm', tags: {}, ints: { a: 1 }, ts: 1e16 }, stats)).toBeNull();
    expect(toLineProtocol({ measurement: 'm', tags: {}, ints: { a: 2 ** 63 }, ts: 1 }, stats)).toBeNull();
    expect(stats.pointsDropped).toBe(2);
  });
  it('reads the dropped count from the end of the full error text', () => {
    const long = `partial write: field type conflict: input field "${'f'.repeat(600)}" on measurement "m" is type float, already exists as type integer dropped=3`;
    expect(droppedCount(long, 10)).toBe(3);
    expect(droppedCount("unable to parse 'a': x\nunable to parse 'b dropped=9 ': y dropped=0", 10)).toBe(2);
    expect(droppedCount('database not found: "x"', 7)).toBe(7);
  });
});

// No skip: the test command installs influxd, and a missing one must fail loudly.
/** The plain reading of line protocol (tuples, a sort per point): what the lean writer must equal. */
function referenceLine(p: MetricPoint): string | null {
  const fields: [string, string][] = [];
  for (const k in p.ints ?? {}) fields.push([storedName(k), `${Math.round(p.ints![k]!)}i`]);
  for (const k in p.floats ?? {}) fields.push([storedName(k), String(p.floats![k])]);
  for (const k in p.strings ?? {})
    fields.push([storedName(k), lpEscape.quoted(storedString(p.strings![k]!))]);
  if (fields.length === 0) return null;
  const tags = Object.entries(p.tags)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => [storedName(k), storedName(v)] as [string, string]);
  const byKey = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  tags.sort(byKey);
  fields.sort(byKey);
  let line = lpEscape.measurement(storedName(p.measurement));
  for (const [k, v] of tags) line += `,${lpEscape.tag(k)}=${lpEscape.tag(v)}`;
  line += ` ${fields.map(([k, v]) => `${lpEscape.tag(k)}=${v}`).join(',')}`;
  return `${line} ${Math.trunc(p.ts)}`;
}

describe('line protocol writer: the same text as the plain reading, without a tuple per field', () => {
  it('random points with hostile names in any key order (names cached across points)', () => {
    const names = [...randomStrings(300, 7), 'host', 'uuid', 'a', 'b', 'utilization_gpu', 'Z', 'a b', 'a,b'];
    let seed = 11;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return names[seed % names.length]!;
    };
    for (let i = 0; i < 2000; i++) {
      const p: MetricPoint = {
        measurement: pick(),
        tags: {},
        ints: {},
        floats: {},
        strings: {},
        ts: 1_750_000_000_000 + i,
      };
      const n = i % 40;
      for (let j = 0; j < n; j++) {
        const kind = (j + i) % 4;
        if (kind === 0) p.tags[pick()] = j % 7 === 0 ? '' : pick();
        else if (kind === 1) p.ints![pick()] = j * 1000 - 7;
        else if (kind === 2) p.floats![pick()] = j / 3;
        else p.strings![pick()] = pick();
      }
      expect(toLineProtocol(p)).toBe(referenceLine(p));
    }
  });
});

describe('line protocol round trip through a real influxd', () => {
  it('hostile tag values, tag keys, field keys and string fields are stored and read back', async () => {
    const { store } = await influx();
    const strings = [...HOSTILE, ...randomStrings(300, 20_261_201)];
    const t0 = Date.now() - 3_600_000;
    // Every string as a tag value and a string field; the hand-picked ones also as keys.
    const points: MetricPoint[] = strings.flatMap((s, i) => [
      { measurement: 'rt_values', tags: { host: s, k: `t${i}` }, ints: { i }, strings: { s }, ts: t0 + i },
    ]);
    for (const [i, s] of HOSTILE.entries()) {
      points.push(
        { measurement: 'rt_tagkeys', tags: { [s]: 'v', k: `t${i}` }, floats: { v: i }, ts: t0 + i },
        { measurement: 'rt_fieldkeys', tags: { k: `t${i}` }, floats: { [s]: i + 0.5 }, ts: t0 + i },
      );
    }
    // Every point is written: nothing refused, nothing left out.
    await store.write(points);
    expect(store.lineStats).toEqual({ fieldsDropped: 0, pointsDropped: 0, lastReason: null });

    const values = await store.query('SELECT "host", "i", "k", "s" FROM "rt_values"');
    const rows = values.series[0]!.values;
    expect(rows).toHaveLength(strings.length);
    for (const [, host, i, k, s] of rows) {
      const original = strings[i as number]!;
      expect(k).toBe(`t${i}`);
      expect(host).toBe(storedName(original));
      // String fields are stored exactly; only lone surrogates (no UTF-8 form) become U+FFFD.
      expect(s).toBe(original.replace(/\ud800/g, '\ufffd'));
    }
    for (const [i, s] of strings.slice(0, HOSTILE.length).entries()) {
      const name = quoteIdent(storedName(s));
      // Distinct names that map to one stored name (e.g. NUL and a newline) share the tag key.
      const tagKey = await store.query(`SELECT "v" FROM "rt_tagkeys" WHERE ${name} = 'v'`);
      const same = HOSTILE.flatMap((o, j) => (storedName(o) === storedName(s) ? [[t0 + j, j]] : []));
      expect(tagKey.series[0]?.values, JSON.stringify(s)).toEqual(same);
      const fieldKey = await store.query(`SELECT ${name} FROM "rt_fieldkeys" WHERE "k" = 't${i}'`);
      expect(fieldKey.series[0]?.values, JSON.stringify(s)).toEqual([[t0 + i, i + 0.5]]);
    }
    // Exactly what had to change changed: printable names without escaping backslashes are equal.
    const unchanged = HOSTILE.filter((s) => storedName(s) === s);
    expect(unchanged).toEqual(
      expect.arrayContaining([
        'a,b=c "d"',
        'emoji 🚀🔥 and flag 🇰🇷',
        '노드 서버-1 한글',
        'DOMAIN\\user',
        `${'한'.repeat(256)}`,
      ]),
    );
  });

  it('GPU samples with hostile names are found again by the history query of their raw names', async () => {
    const { store } = await influx();
    const ts = Date.now() - 60_000;
    const names = ['node\\', 'n\u0000de', 'node, "a"=b', '노드🚀'];
    for (const [i, node] of names.entries()) {
      const s = sample(1, ts + i);
      s.gpus[0]!.name = `GPU ${node}`;
      s.gpus[0]!.serial = node;
      await store.write(samplePoints(node, s, [], () => node));
    }
    const backend = new InfluxBackend(store, 'lp_test');
    for (const node of names) {
      const series = await backend.aggregate({
        measurement: 'nvidia_smi',
        fields: [{ field: 'utilization_gpu', fn: 'mean' }],
        where: { host: node, project: node },
        from: ts - 1000,
        to: ts + 1000,
        stepMs: 60_000,
        fill: 'none',
      });
      expect(
        series.map((s) => s.rows.map((r) => r[1])),
        node,
      ).toEqual([[42]]);
      const serial = await store.query(
        `SELECT serial FROM nvidia_smi WHERE host = '${storedName(node).replace(/'/g, "\\'")}'`,
      );
      expect(serial.series[0]!.values[0]![1]).toBe(node);
    }
  });

  it('boundary numbers: int64 edges stored exactly, beyond int64 left out and counted', async () => {
    const { store } = await influx();
    const ts = Date.now() - 60_000;
    const edge = 2 ** 63 - 1024; // the largest double below 2^63
    await expect(
      store.write([
        {
          measurement: 'nums',
          tags: { k: 'a' },
          ints: { max: edge, min: -edge, zero: 0 },
          floats: { big: 1e300, tiny: -5e-324 },
          ts,
        },
        {
          measurement: 'nums',
          tags: { k: 'b' },
          ints: { over: 2 ** 63, under: -(2 ** 64) },
          floats: { ok: 1 },
          ts,
        },
        { measurement: 'nums', tags: { k: 'c' }, ints: { a: 1 }, ts: 9.3e15 },
      ]),
    ).rejects.toMatchObject({ name: 'StoreWriteError', retryable: false, dropped: 1 });
    expect(store.lineStats.fieldsDropped).toBe(2);
    const res = await store.query(`SELECT * FROM nums`);
    expect(res.series[0]!.columns).toEqual(['time', 'big', 'k', 'max', 'min', 'ok', 'tiny', 'zero']);
    expect(res.series[0]!.values).toEqual([
      [ts, 1e300, 'a', edge, -edge, null, -5e-324, 0],
      [ts, null, 'b', null, null, 1, null, null],
    ]);
  });
});

describe('partial writes: the exact number InfluxDB dropped is counted', () => {
  it('a batch with a few field-type conflicts and a long error text counts exactly those', async () => {
    const { store } = await influx();
    const ts = Date.now() - 60_000;
    // Long names make InfluxDB's error text far longer than 500 characters.
    const measurement = `m_${'long'.repeat(100)}`;
    const field = `f_${'field'.repeat(60)}`;
    await store.write([{ measurement, tags: { n: 'seed' }, ints: { [field]: 1 }, ts: ts - 1 }]);
    const batch: MetricPoint[] = [];
    for (let i = 0; i < 50; i++) {
      const conflict = i % 17 === 5; // 3 of 50
      batch.push({
        measurement,
        tags: { n: String(i) },
        ...(conflict ? { floats: { [field]: i + 0.5 } } : { ints: { [field]: i } }),
        ts: ts + i,
      });
    }
    // Rollup-tier points in another retention policy, in the same batch, are still written.
    await store.query(`CREATE RETENTION POLICY "rp_other" ON "lp_test" DURATION 1d REPLICATION 1`);
    for (let i = 0; i < 5; i++)
      batch.push({ measurement: 'other', tags: {}, floats: { v: i }, ts: ts + i, rp: 'rp_other' });

    const err = await store.write(batch).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreWriteError);
    expect((err as StoreWriteError).dropped).toBe(3);
    expect((err as StoreWriteError).retryable).toBe(false);
    expect((err as StoreWriteError).message.length).toBeLessThan(700);

    // Through the write buffer: /metrics' dropped{rejected} gets exactly 3, written 52.
    const dropped: Record<string, number> = {};
    const buffer = new WriteBuffer({
      store,
      batchSize: 1000,
      flushIntervalMs: 20,
      observer: {
        dropped: (reason, n) => {
          dropped[reason] = (dropped[reason] ?? 0) + n;
        },
      },
    });
    buffer.start();
    onCleanup(() => buffer.close(1000));
    // One more point line protocol cannot carry (a timestamp past 2262): dropped as the buffer
    // encodes it, counted with the refused ones; the rest go on as lines.
    const future: MetricPoint = {
      measurement,
      tags: { n: 'future' },
      ints: { [field]: 1 },
      ts: 32_503_680_000_000,
    };
    buffer.enqueue([...batch.map((p) => ({ ...p, ts: p.ts + 100 })), future]);
    expect(dropped).toEqual({ rejected: 1 });
    expect(buffer.buffered).toBe(55);
    await waitFor(() => buffer.stats.batchesRejected === 1, 5000, 'partial write');
    expect(dropped).toEqual({ rejected: 4 });
    expect(buffer.stats.pointsRejected).toBe(4);
    expect(buffer.stats.pointsWritten).toBe(52);

    const stored = await store.query(`SELECT count(${quoteIdent(field)}) FROM ${quoteIdent(measurement)}`);
    expect(stored.series[0]!.values[0]![1]).toBe(1 + 47 + 47);
    const other = await store.query(`SELECT count(v) FROM "lp_test"."rp_other"."other"`);
    expect(other.series[0]!.values[0]![1]).toBe(10);
  });
});
