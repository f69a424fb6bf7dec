/**
 * InfluxDB line protocol that no string can break, on InfluxDB 1.x, 2.x and 3.x alike.
 *
 * The client library's escapers (`escape.measurement` / `tag` / `quoted` of
 * @influxdata/influxdb-client) do the quoting; this module first makes names storable, because
 * some characters cannot be written portably at all:
 *
 * - **Names** (measurement, tag keys, tag values, field keys):
 *   - a character Go's `unicode.IsPrint` refuses (C0/C1 controls incl. NUL, TAB, CR, LF; format
 *     characters such as U+200D or U+FEFF; separators other than the ASCII space; lone surrogates;
 *     private-use and unassigned code points) and U+FFFD are replaced by `?` — InfluxDB 1.x
 *     stores some of them and 2.x/3.x refuse or mangle others;
 *   - a backslash is kept when the next character is an ordinary one (`DOMAIN\user` stays as it
 *     is); a backslash at the end, before another backslash, or before a space, `,` or `=` is
 *     replaced by `⧵` (U+29F5 REVERSE SOLIDUS OPERATOR): InfluxDB 1.x refuses a trailing one
 *     (`invalid tag format`) and 1.x and 2.x read `\\` differently.
 *   `storedName()` is that mapping; queries filter on `storedName(value)`.
 * - **String field values** are stored exactly (quotes, backslashes, newlines and NUL included);
 *   only lone UTF-16 surrogates, which UTF-8 cannot carry, become U+FFFD.
 * - **Numbers**: floats must be finite; integers are rounded and must lie inside int64, else the
 *   field is left out and counted (`LineStats.fieldsDropped`). A point whose timestamp is not a
 *   finite ms time inside InfluxDB's range (1677…2262), or that has no field left, yields no line
 *   and is counted (`LineStats.pointsDropped`).
 *
 * Tags and fields are sorted by key, as the library's `Point` does.
 */

import { escape as lp } from '@influxdata/influxdb-client';
import type { MetricPoint } from './metric-store.ts';

/** What a name character that InfluxDB cannot store portably becomes. */
export const NAME_REPLACEMENT = '?';
/** What a backslash InfluxDB would read as an escape becomes. */
export const BACKSLASH_REPLACEMENT = '\u29f5';

/** Printable per Go's unicode.IsPrint (letters, marks, numbers, punctuation, symbols, ASCII space). */
const NOT_PRINTABLE = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]|\uFFFD/gu;
/** A backslash followed by the end, another backslash, a space, a comma or `=`. */
const ESCAPING_BACKSLASH = /\\(?=$|[\\ ,=])/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Printable ASCII without a backslash: the common case, tested first (cheaper). */
const PLAIN_ASCII = /^[\x20-\x5b\x5d-\x7e]*$/;
const NEEDS_NAME_FIX = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]|[\uFFFD\\]/u;

/** A name (measurement, tag key or value, field key) as InfluxDB will store it. */
export function storedName(s: string): string {
  if (PLAIN_ASCII.test(s) || !NEEDS_NAME_FIX.test(s)) return s;
  return s.replace(NOT_PRINTABLE, NAME_REPLACEMENT).replace(ESCAPING_BACKSLASH, BACKSLASH_REPLACEMENT);
}

/** A string field value as InfluxDB will store it. */
export function storedString(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

/** Largest magnitude an int64 field may have (2^63 − 1 rounds to 2^63 in a double, so `<`). */
const INT64_LIMIT = 2 ** 63;
/** InfluxDB's time range in ms (int64 ns: 1677-09-21 … 2262-04-11). */
const MIN_TS_MS = -9_223_372_036_854;
const MAX_TS_MS = 9_223_372_036_854;

/** Counts of what `toLineProtocol` left out (cumulative; pass the same object each time). */
export interface LineStats {
  /** Fields left out: a float not finite, an integer not finite or outside int64. */
  fieldsDropped: number;
  /** Points that yielded no line: timestamp out of range, or no field left. */
  pointsDropped: number;
  /** The last reason something was left out (for a log line). */
  lastReason: string | null;
}

export const newLineStats = (): LineStats => ({ fieldsDropped: 0, pointsDropped: 0, lastReason: null });

const byKey = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * One line of line protocol, or null when the point cannot be written (no field, or a timestamp
 * InfluxDB cannot hold); what is left out is counted in `stats`.
 */
export function toLineProtocol(p: MetricPoint, stats?: LineStats): string | null {
  const ts = Math.trunc(p.ts);
  if (!Number.isFinite(ts) || ts < MIN_TS_MS || ts > MAX_TS_MS) {
    if (stats) {
      stats.pointsDropped++;
      stats.lastReason = `timestamp ${p.ts} is outside InfluxDB's range`;
    }
    return null;
  }
  const fields: [string, string][] = [];
  const drop = (k: string, v: number, why: string) => {
    if (stats) {
      stats.fieldsDropped++;
      stats.lastReason = `${p.measurement}.${k} = ${v}: ${why}`;
    }
  };
  if (p.ints)
    for (const k in p.ints) {
      const v = Math.round(p.ints[k]!);
      if (!Number.isFinite(v)) drop(k, v, 'not a finite number');
      else if (Math.abs(v) >= INT64_LIMIT) drop(k, v, 'outside int64');
      else fields.push([storedName(k), `${v}i`]);
    }
  if (p.floats)
    for (const k in p.floats) {
      const v = p.floats[k]!;
      if (Number.isFinite(v)) fields.push([storedName(k), String(v)]);
      else drop(k, v, 'not a finite number');
    }
  if (p.strings)
    for (const k in p.strings) fields.push([storedName(k), lp.quoted(storedString(p.strings[k]!))]);
  if (fields.length === 0) {
    if (stats && (p.ints || p.floats)) {
      stats.pointsDropped++;
      stats.lastReason ??= `${p.measurement}: no field left`;
    }
    return null;
  }
  const tags: [string, string][] = [];
  for (const k in p.tags) {
    const v = p.tags[k]!;
    if (v !== '') tags.push([storedName(k), storedName(v)]);
  }
  tags.sort(byKey);
  fields.sort(byKey);
  let line = lp.measurement(storedName(p.measurement));
  for (const [k, v] of tags) line += `,${lp.tag(k)}=${lp.tag(v)}`;
  line += ' ';
  for (let i = 0; i < fields.length; i++) line += `${i ? ',' : ''}${lp.tag(fields[i]![0])}=${fields[i]![1]}`;
  return `${line} ${ts}`;
}
