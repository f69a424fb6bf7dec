/**
 * Retention policies for the storage tiers on InfluxDB 1.x: `rp_raw` (default RP, raw points),
 * `rp_1m` and `rp_1h` (rollups, written with `/write?rp=`). Created or altered at start-up when
 * permitted; when not (InfluxDB 2.x/3.x, or a 1.x user without admin rights) the reason is logged
 * and that tier is written to the database's default retention policy instead.
 */
import type { Logger } from 'pino';
import type { RetentionConfig } from '../config.ts';
import { quoteIdent } from '../storage/influx-store.ts';
import type { MetricStore } from '../storage/metric-store.ts';
import type { RollupTier } from '../storage/schema.ts';

export type StorageTier = 'raw' | RollupTier;
/** Retention policy per tier; absent: the database's default RP. */
export type TierPolicies = Partial<Record<StorageTier, string>>;

export const RP_NAMES: Record<StorageTier, string> = { raw: 'rp_raw', '1m': 'rp_1m', '1h': 'rp_1h' };

export async function ensureRetentionPolicies(
  store: MetricStore,
  database: string,
  retention: RetentionConfig,
  logger?: Logger,
): Promise<TierPolicies> {
  if (retention.policies === 'off') return {};
  // InfluxDB 2.x with DBRP mappings made by hand: use the names, create nothing.
  if (retention.policies === 'existing') return { '1m': RP_NAMES['1m'], '1h': RP_NAMES['1h'] };
  const out: TierPolicies = {};
  let existing: Set<string>;
  try {
    const res = await store.query(`SHOW RETENTION POLICIES ON ${quoteIdent(database)}`);
    existing = new Set((res.series[0]?.values ?? []).map((row) => String(row[0])));
  } catch (err) {
    logger?.warn(
      { err: (err as Error).message },
      'cannot list retention policies (fine on InfluxDB 2.x/3.x: set bucket retention there); every tier is written to the default retention policy',
    );
    return {};
  }
  const durations: Record<StorageTier, string> = {
    raw: retention.raw,
    '1m': retention.oneMinute,
    '1h': retention.oneHour,
  };
  for (const tier of ['raw', '1m', '1h'] as const) {
    const name = RP_NAMES[tier];
    const d = durations[tier].toUpperCase() === 'INF' ? 'INF' : durations[tier].toLowerCase();
    const verb = existing.has(name) ? 'ALTER' : 'CREATE';
    const repl = verb === 'CREATE' ? ' REPLICATION 1' : '';
    const q = `${verb} RETENTION POLICY ${quoteIdent(name)} ON ${quoteIdent(database)} DURATION ${d}${repl}${tier === 'raw' ? ' DEFAULT' : ''}`;
    try {
      await store.query(q);
      out[tier] = name;
    } catch (err) {
      logger?.warn(
        { err: (err as Error).message, policy: name },
        `cannot ${verb.toLowerCase()} retention policy ${name}; tier ${tier} goes to the default retention policy`,
      );
    }
  }
  // Raw points are written without `rp` (to the default RP); only the rollups name theirs.
  if (out.raw) logger?.info({ policies: out, durations }, 'retention policies in place');
  return out;
}
