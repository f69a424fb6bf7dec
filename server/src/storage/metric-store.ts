import type { StorageInfo, StorageKind } from '@gpupulse/protocol';

/**
 * One point in storage terms. Fields are split by InfluxDB type so that a field's type is fixed by
 * the schema (src/storage/schema.ts) and can never change between writes.
 */
export interface MetricPoint {
  measurement: string;
  /** Tag values; an empty string is never stored (the tag is omitted instead). */
  tags: Record<string, string>;
  /**
   * Integer fields (written with the `i` suffix). Whole numbers (the protocol refuses fractions);
   * line protocol rounds defensively and leaves out values outside int64 (counted).
   */
  ints?: Record<string, number>;
  /** Float fields. */
  floats?: Record<string, number>;
  /** String fields. */
  strings?: Record<string, string>;
  /** Timestamp, ms since the epoch (written with `precision=ms`). */
  ts: number;
  /** InfluxDB 1.x retention policy to write to (`/write?rp=`); absent: the database's default. */
  rp?: string;
}

/** One series of an InfluxQL result (the InfluxDB v1 `/query` JSON shape, `epoch=ms`). */
export interface QuerySeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export interface QueryResult {
  series: QuerySeries[];
}

/**
 * A failed write. `retryable` is true for network errors, timeouts, 5xx and 429; false for other
 * 4xx answers (type conflicts, bad line protocol, missing database), which must not be retried.
 */
export class StoreWriteError extends Error {
  readonly retryable: boolean;
  readonly status: number | null;
  /** Points InfluxDB reported as dropped in a partial write, when it says so. */
  readonly dropped: number | null;
  constructor(
    message: string,
    opts: { retryable: boolean; status?: number | null; dropped?: number | null },
  ) {
    super(message);
    this.name = 'StoreWriteError';
    this.retryable = opts.retryable;
    this.status = opts.status ?? null;
    this.dropped = opts.dropped ?? null;
  }
}

export class StoreQueryError extends Error {
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.name = 'StoreQueryError';
    this.status = status;
  }
}

/**
 * A point in its store's own form (`MetricStore.encode`), made once as the point enters the write
 * buffer: what the buffer holds in memory, the write journal and the disk spool keep on disk, and
 * `writeEncoded` sends. Opaque outside the store (InfluxDB: a line of line protocol). One short
 * string per point instead of a point's five objects, held until storage took it: the server's
 * allocation rate and memory depend on it.
 */
export type EncodedPoint = string;

/** The storage seam: InfluxDB (`InfluxStore`) or the in-memory twin (`MemoryStore`). */
export interface MetricStore {
  readonly kind: StorageKind;
  /**
   * The point in the form `writeEncoded` takes, or null when it cannot be stored (counted by the
   * store, e.g. a timestamp InfluxDB cannot hold).
   */
  encode(point: MetricPoint): EncodedPoint | null;
  /** Writes one batch of encoded points. Throws `StoreWriteError`. */
  writeEncoded(points: readonly EncodedPoint[]): Promise<void>;
  /** Encodes and writes one batch (`encode` + `writeEncoded`). Throws `StoreWriteError`. */
  write(points: readonly MetricPoint[]): Promise<void>;
  /** Runs one InfluxQL statement; times come back as ms since the epoch. Throws `StoreQueryError`. */
  query(influxql: string): Promise<QueryResult>;
  /** True when the store answers. Never throws. */
  ping(): Promise<boolean>;
  info(): StorageInfo;
  close(): Promise<void>;
}

/**
 * The encoding of a store that keeps points as they are (the in-memory twin, test doubles): the
 * point's JSON.
 */
export const jsonEncoding = {
  encode: (point: MetricPoint): EncodedPoint => JSON.stringify(point),
  decode: (encoded: EncodedPoint): MetricPoint => JSON.parse(encoded) as MetricPoint,
};

/**
 * Encoded points read back from a journal or spool record (a JSON array): strings as they are;
 * points (a record written before points were stored encoded) encoded with `encode` — so a server
 * upgraded with a non-empty spool or journal loses none of it.
 */
export function encodedRecord(
  items: readonly unknown[],
  encode: (point: MetricPoint) => EncodedPoint | null,
): EncodedPoint[] {
  const out: EncodedPoint[] = [];
  for (const item of items) {
    if (typeof item === 'string') out.push(item);
    else if (typeof item === 'object' && item !== null) {
      const e = encode(item as MetricPoint);
      if (e !== null) out.push(e);
    }
  }
  return out;
}
