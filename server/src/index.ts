export {
  ALERT_KINDS,
  type AlertKind,
  type AlertRule,
  type AlertsConfig,
  AlertsConfigError,
  buildAlertsConfig,
  DEFAULT_ALERT_RULES,
  loadAlertsFile,
  parseWebhookList,
  parseWebhookSpec,
  type WebhookTarget,
} from './alerts/config.ts';
export { AlertEngine, type AlertFilter } from './alerts/engine.ts';
export { AlertService } from './alerts/service.ts';
export { WebhookNotifier } from './alerts/webhooks.ts';
export { type CreateServerOptions, createServer, type GpupulseServer } from './app.ts';
export { type Clock, ManualClock, systemClock } from './clock.ts';
export {
  ConfigError,
  DEFAULT_WEB_DIR,
  type InfluxConfig,
  type LogLevel,
  loadConfig,
  type ServerConfig,
  type WriteBufferConfig,
} from './config.ts';
export {
  type AttributeFn,
  type Attribution,
  type AttributionRule,
  attributeUnassigned,
  attributionFromFn,
  memoryShares,
  type ProcessShare,
  splitGpu,
  topProject,
  UNASSIGNED,
} from './fleet/attribution.ts';
export {
  FleetState,
  type FleetStateOptions,
  type GpuState,
  type IngestedSample,
} from './fleet/fleet-state.ts';
export { chooseStep, chooseTier, queryHistory, queryUsage, usageCsv } from './history/history-api.ts';
export { buildInfluxQL, InfluxBackend, MemoryBackend, type QueryBackend } from './history/query-backend.ts';
export { createLogger, silentLogger } from './logger.ts';
export { createProjectAttribution } from './projects/attributor.ts';
export { type ProjectsConfig, ProjectsFileError, parseProjectsFile } from './projects/projects-file.ts';
export { ProjectsRegistry, type ProjectsRegistryOptions } from './projects/projects-registry.ts';
export { type GroupDb, parseGroupDb, readGroupDb } from './projects/unix-groups.ts';
export { ensureRetentionPolicies, RP_NAMES, type TierPolicies } from './rollups/retention.ts';
export { RollupAggregator, type RollupAggregatorOptions } from './rollups/rollup-aggregator.ts';
export { InfluxStore, type InfluxStoreOptions, quoteIdent, quoteString } from './storage/influx-store.ts';
export {
  freePort,
  type ManagedInfluxd,
  type ManagedInfluxdOptions,
  startManagedInfluxd,
} from './storage/managed-influxd.ts';
export {
  MEMORY_STORE_WARNING,
  MemoryStore,
  type MemoryStoreOptions,
  type SeriesQuery,
  type SeriesValue,
} from './storage/memory-store.ts';
export {
  type MetricPoint,
  type MetricStore,
  type QueryResult,
  type QuerySeries,
  StoreQueryError,
  StoreWriteError,
} from './storage/metric-store.ts';
export {
  alertPoint,
  MEASUREMENT_ALERT,
  MEASUREMENT_GPU,
  MEASUREMENT_HOST,
  MEASUREMENT_PROCESS,
  samplePoints,
  toLineProtocol,
} from './storage/schema.ts';
export { DiskSpool, type DiskSpoolOptions, type SpoolStats } from './storage/spool.ts';
export { WriteBuffer, type WriteBufferOptions, type WriteBufferStats } from './storage/write-buffer.ts';
export { LiveUsage, type LiveUsageOptions } from './usage/live-usage.ts';
export { SERVER_VERSION } from './version.ts';
