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
export { type AttributeFn, attributeUnassigned, UNASSIGNED } from './fleet/attribution.ts';
export { FleetState, type FleetStateOptions } from './fleet/fleet-state.ts';
export { createLogger, silentLogger } from './logger.ts';
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
  MEASUREMENT_GPU,
  MEASUREMENT_HOST,
  MEASUREMENT_PROCESS,
  samplePoints,
  toLineProtocol,
} from './storage/schema.ts';
export { WriteBuffer, type WriteBufferOptions, type WriteBufferStats } from './storage/write-buffer.ts';
export { SERVER_VERSION } from './version.ts';
