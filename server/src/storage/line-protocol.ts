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
 * Tags and fields are sorted by key, as the library's `Point` does. Names are worked out once each
 * (a bounded cache) and no object is made per field: this runs for every point written.
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

/**
 * A name as stored and as written: `stored` (storedName, what keys sort by) and `escaped` (its
 * line-protocol form). Names repeat from point to point (field and tag keys, hosts, UUIDs, GPU
 * models …): each is worked out once and kept, in a bounded cache cleared when full.
 */
interface NameForm {
  stored: string;
  escaped: string;
}
const MAX_CACHED_NAMES = 100_000;
const tagNames = new Map<string, NameForm>();
const measurementNames = new Map<string, string>();

function nameForm(raw: string): NameForm {
  let f = tagNames.get(raw);
  if (f === undefined) {
    const stored = storedName(raw);
    f = { stored, escaped: lp.tag(stored) };
    if (tagNames.size >= MAX_CACHED_NAMES) tagNames.clear();
    tagNames.set(raw, f);
  }
  return f;
}

function measurementName(raw: string): string {
  let m = measurementNames.get(raw);
  if (m === undefined) {
    m = lp.measurement(storedName(raw));
    if (measurementNames.size >= 10_000) measurementNames.clear();
    measurementNames.set(raw, m);
  }
  return m;
}

/**
 * Scratch space of `toLineProtocol` (reused from call to call: no array or tuple per point or
 * field): the sort key, the `key=value` text and the order of each field or tag.
 */
const fieldKeys: string[] = [];
const fieldTexts: string[] = [];
const fieldOrder: number[] = [];
const tagKeys: string[] = [];
const tagTexts: string[] = [];
const tagOrder: number[] = [];

/** Sorts `order[0..n)` by `keys` (stable: binary insertion; n is a point's field count, tens). */
function sortOrder(keys: readonly string[], order: number[], n: number): void {
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    let lo = 0;
    let hi = i;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[order[mid]!]! > k) hi = mid;
      else lo = mid + 1;
    }
    for (let j = i; j > lo; j--) order[j] = order[j - 1]!;
    order[lo] = i;
  }
}

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
  let nf = 0;
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
      else {
        const f = nameForm(k);
        fieldKeys[nf] = f.stored;
        fieldTexts[nf++] = `${f.escaped}=${v}i`;
      }
    }
  if (p.floats)
    for (const k in p.floats) {
      const v = p.floats[k]!;
      if (Number.isFinite(v)) {
        const f = nameForm(k);
        fieldKeys[nf] = f.stored;
        fieldTexts[nf++] = `${f.escaped}=${v}`;
      } else drop(k, v, 'not a finite number');
    }
  if (p.strings)
    for (const k in p.strings) {
      const f = nameForm(k);
      fieldKeys[nf] = f.stored;
      fieldTexts[nf++] = `${f.escaped}=${lp.quoted(storedString(p.strings[k]!))}`;
    }
  if (nf === 0) {
    if (stats && (p.ints || p.floats)) {
      stats.pointsDropped++;
      stats.lastReason ??= `${p.measurement}: no field left`;
    }
    return null;
  }
  let nt = 0;
  for (const k in p.tags) {
    const v = p.tags[k]!;
    if (v === '') continue;
    const f = nameForm(k);
    tagKeys[nt] = f.stored;
    tagTexts[nt++] = `,${f.escaped}=${nameForm(v).escaped}`;
  }
  sortOrder(tagKeys, tagOrder, nt);
  sortOrder(fieldKeys, fieldOrder, nf);
  // Joined, not concatenated: the line is held (write buffer, journal) until storage took it, and
  // a flat string is one object where `+=` leaves a tree of one per piece.
  let n = 0;
  parts[n++] = measurementName(p.measurement);
  for (let i = 0; i < nt; i++) parts[n++] = tagTexts[tagOrder[i]!]!;
  for (let i = 0; i < nf; i++) {
    parts[n++] = i === 0 ? ' ' : ',';
    parts[n++] = fieldTexts[fieldOrder[i]!]!;
  }
  parts[n++] = ' ';
  parts[n++] = String(ts);
  parts.length = n;
  return parts.join('');
}

const parts: string[] = [];
