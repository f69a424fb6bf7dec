// Node-only code shared by the agent and the server (never imported by the browser: see README).
export { Backoff, type BackoffOptions, backoffDelay } from './backoff.ts';
export {
  type DropReason,
  encodeRecord,
  type LogLike,
  type LogOpenReport,
  MAX_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  type RecordMeta,
  type ScannedRecord,
  SEGMENT_MAGIC,
  SegmentedLog,
  type SegmentedLogOptions,
  scanSegment,
} from './segmented-log.ts';
