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

/** The storage seam: InfluxDB (`InfluxStore`) or the in-memory twin (`MemoryStore`). */
export interface MetricStore {
  readonly kind: StorageKind;
  /** Writes one batch. Throws `StoreWriteError`. */
  write(points: readonly MetricPoint[]): Promise<void>;
  /** Runs one InfluxQL statement; times come back as ms since the epoch. Throws `StoreQueryError`. */
  query(influxql: string): Promise<QueryResult>;
  /** True when the store answers. Never throws. */
  ping(): Promise<boolean>;
  info(): StorageInfo;
  close(): Promise<void>;
}
