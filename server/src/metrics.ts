import type { Alert } from '@gpupulse/protocol';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { WebhookObserver } from './alerts/webhooks.ts';
import { redact } from './alerts/webhooks.ts';
import type { WriteBufferObserver } from './storage/write-buffer.ts';

export interface ServerMetrics {
  registry: Registry;
  agentsConnected: Gauge;
  dashboardsConnected: Gauge;
  /** Dashboards cut off because they stopped reading (their send queue passed its bound). */
  dashboardsDropped: Counter;
  agentsRefused: Counter<'code'>;
  samplesReceived: Counter;
  sampleReports: Counter;
  rejectedPayloads: Counter<'event' | 'reason'>;
  /** Samples refused for good, by code (VALIDATION, TOO_OLD, TOO_NEW): the agent drops them. */
  samplesRejected: Counter<'code'>;
  /** Valid samples not taken because storage is behind (the agent keeps and resends them). */
  samplesRefused: Counter<'reason'>;
  /** Samples run through validation (a report refused before it, under backpressure, costs none). */
  samplesValidated: Counter;
  /** Reports answered UNAVAILABLE before validation, by stage: `frame` (not even decoded), `envelope`. */
  reportsShed: Counter<'stage'>;
  /** Frames that failed to decode (invalid JSON such as a bare NaN). */
  malformedFrames: Counter;
  deltasSent: Counter;
  writeObserver: WriteBufferObserver;
  webhookObserver: WebhookObserver;
  /** Counts alert transitions (firing / resolved) by rule. */
  alertsChanged(changed: readonly Alert[]): void;
}

export interface MetricsSources {
  bufferSize(): number;
  storageUp(): boolean;
  fleet(): { nodes: number; gpus: number; byStatus: Record<string, number> };
  memoryStoreDropped(): number | null;
  /** Fields line protocol left out (not finite, outside int64); see storage/line-protocol.ts. */
  storageFieldsDropped?(): number;
  /** Late samples merged into stored rollups, and left out of them (still stored raw). */
  rollupLate?(): { merged: number; dropped: number };
  /** The write buffer's disk spool, null when there is none. */
  spool?(): { bytes: number; segments: number; points: number; tornRecords: number } | null;
  /** The write buffer's write-ahead journal, null when there is none. */
  journal?(): { pointsJournaled: number; pointsNotJournaled: number; pointsRecovered: number } | null;
  /** Firing alerts per rule id. */
  alertsFiring?(): Record<string, number>;
}

/** The server's own figures, on a Registry of its own (several servers can share a process). */
export function createServerMetrics(sources: MetricsSources): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const registers = [registry];

  const agentsConnected = new Gauge({
    name: 'gpupulse_agents_connected',
    help: 'Agent connections on /agent',
    registers,
  });
  const dashboardsDropped = new Counter({
    name: 'gpupulse_dashboards_dropped_total',
    help: 'Dashboards disconnected because they stopped reading (send queue over its bound)',
    registers,
  });
  const dashboardsConnected = new Gauge({
    name: 'gpupulse_dashboards_connected',
    help: 'Dashboard connections on /dashboard',
    registers,
  });
  const agentsRefused = new Counter({
    name: 'gpupulse_agent_connections_refused_total',
    help: 'Agent connections refused, by error code',
    labelNames: ['code'] as const,
    registers,
  });
  const samplesReceived = new Counter({
    name: 'gpupulse_samples_received_total',
    help: 'Valid samples received from agents',
    registers,
  });
  const sampleReports = new Counter({
    name: 'gpupulse_sample_reports_total',
    help: 'samples:report messages received (valid or not)',
    registers,
  });
  const rejectedPayloads = new Counter({
    name: 'gpupulse_rejected_payloads_total',
    help: 'Inbound payloads refused, by event and reason',
    labelNames: ['event', 'reason'] as const,
    registers,
  });
  const samplesRejected = new Counter({
    name: 'gpupulse_samples_rejected_total',
    help: 'Samples refused for good (agents drop them), by code: VALIDATION (shape or bounds), TOO_OLD, TOO_NEW (ts window)',
    labelNames: ['code'] as const,
    registers,
  });
  const samplesRefused = new Counter({
    name: 'gpupulse_samples_refused_total',
    help:
      'Valid samples answered UNAVAILABLE because storage is behind (backlog_full: memory bound, spool_full: ' +
      'disk spool near its bound); agents keep them and resend — backpressure, not loss',
    labelNames: ['reason'] as const,
    registers,
  });
  const samplesValidated = new Counter({
    name: 'gpupulse_samples_validated_total',
    help: 'Samples run through validation (schema and ts window); reports refused before it (backpressure) add none',
    registers,
  });
  const reportsShed = new Counter({
    name: 'gpupulse_sample_reports_shed_total',
    help:
      'samples:report answered UNAVAILABLE before validation because storage refuses anyway, by stage: frame ' +
      '(a replay batch not even JSON-decoded), envelope (decoded, not validated); also in gpupulse_rejected_payloads_total',
    labelNames: ['stage'] as const,
    registers,
  });
  for (const stage of ['frame', 'envelope']) reportsShed.inc({ stage }, 0);
  const malformedFrames = new Counter({
    name: 'gpupulse_malformed_frames_total',
    help: 'Agent frames that failed to decode (invalid JSON, e.g. a bare NaN); answered VALIDATION',
    registers,
  });
  for (const code of ['VALIDATION', 'TOO_OLD', 'TOO_NEW']) samplesRejected.inc({ code }, 0);
  for (const reason of ['backlog_full', 'spool_full']) samplesRefused.inc({ reason }, 0);
  const deltasSent = new Counter({
    name: 'gpupulse_fleet_deltas_sent_total',
    help: 'fleet:delta broadcasts',
    registers,
  });
  const writeBatches = new Counter({
    name: 'gpupulse_storage_write_batches_total',
    help: 'Storage write attempts by result (ok, retry, rejected)',
    labelNames: ['result'] as const,
    registers,
  });
  const pointsWritten = new Counter({
    name: 'gpupulse_storage_points_written_total',
    help: 'Points written to storage',
    registers,
  });
  const writeErrors = new Counter({
    name: 'gpupulse_storage_write_errors_total',
    help: 'Failed storage writes (retryable or rejected)',
    labelNames: ['kind'] as const,
    registers,
  });
  const pointsDropped = new Counter({
    name: 'gpupulse_storage_points_dropped_total',
    help:
      'Points never stored: overflow (write buffer full), rejected (4xx from storage), shutdown, ' +
      'spool_full (oldest spool segment deleted), spool_corrupt (unreadable spool record)',
    labelNames: ['reason'] as const,
    registers,
  });
  const writeLatency = new Histogram({
    name: 'gpupulse_storage_write_duration_seconds',
    help: 'Duration of storage writes',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  new Gauge({
    name: 'gpupulse_write_buffer_points',
    help: 'Points waiting in the write buffer',
    registers,
    collect() {
      this.set(sources.bufferSize());
    },
  });
  new Gauge({
    name: 'gpupulse_storage_up',
    help: '1 when the storage answers',
    registers,
    collect() {
      this.set(sources.storageUp() ? 1 : 0);
    },
  });
  let memoryDroppedSeen = 0;
  new Counter({
    name: 'gpupulse_memory_store_dropped_points_total',
    help: 'Points the in-memory store dropped because it was full',
    registers,
    collect() {
      const now = sources.memoryStoreDropped();
      if (now !== null && now > memoryDroppedSeen) {
        this.inc(now - memoryDroppedSeen);
        memoryDroppedSeen = now;
      }
    },
  });
  let fieldsDroppedSeen = 0;
  new Counter({
    name: 'gpupulse_storage_fields_dropped_total',
    help: 'Fields left out of line protocol because InfluxDB cannot hold them (not finite, outside int64)',
    registers,
    collect() {
      const now = sources.storageFieldsDropped?.() ?? 0;
      if (now > fieldsDroppedSeen) {
        this.inc(now - fieldsDroppedSeen);
        fieldsDroppedSeen = now;
      }
    },
  });
  const lateSeen = { merged: 0, dropped: 0 };
  new Counter({
    name: 'gpupulse_rollup_late_samples_total',
    help: 'Samples for a minute already rolled up: merged into the stored rollups, or dropped from them (still stored raw)',
    labelNames: ['result'] as const,
    registers,
    collect() {
      const now = sources.rollupLate?.();
      if (!now) return;
      for (const result of ['merged', 'dropped'] as const) {
        // inc by 0 too, so that both series are there from the first scrape
        this.inc({ result }, Math.max(0, now[result] - lateSeen[result]));
        lateSeen[result] = Math.max(lateSeen[result], now[result]);
      }
    },
  });
  new Gauge({
    name: 'gpupulse_fleet_nodes',
    help: 'Known nodes by status',
    labelNames: ['status'] as const,
    registers,
    collect() {
      for (const [status, n] of Object.entries(sources.fleet().byStatus)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'gpupulse_fleet_gpus',
    help: 'GPUs in the latest samples of known nodes',
    registers,
    collect() {
      this.set(sources.fleet().gpus);
    },
  });

  const pointsSpooled = new Counter({
    name: 'gpupulse_storage_points_spooled_total',
    help: 'Points moved to the disk spool while storage was unreachable or behind (backlog past its bound)',
    registers,
  });
  new Gauge({
    name: 'gpupulse_spool_bytes',
    help: 'Bytes in the write spool on disk',
    registers,
    collect() {
      this.set(sources.spool?.()?.bytes ?? 0);
    },
  });
  new Gauge({
    name: 'gpupulse_spool_segments',
    help: 'Segment files in the write spool',
    registers,
    collect() {
      this.set(sources.spool?.()?.segments ?? 0);
    },
  });
  new Gauge({
    name: 'gpupulse_spool_points',
    help: 'Points waiting in the write spool',
    registers,
    collect() {
      this.set(sources.spool?.()?.points ?? 0);
    },
  });
  let tornSeen = 0;
  new Counter({
    name: 'gpupulse_spool_torn_records_total',
    help: 'Torn or corrupt spool records found (and skipped) when the spool was opened',
    registers,
    collect() {
      const now = sources.spool?.()?.tornRecords ?? 0;
      if (now > tornSeen) {
        this.inc(now - tornSeen);
        tornSeen = now;
      }
    },
  });
  const journalSeen = { journaled: 0, not_journaled: 0, recovered: 0 };
  new Counter({
    name: 'gpupulse_journal_points_total',
    help:
      'Acked points by write-journal outcome: journaled (on disk before the ack), not_journaled (the ' +
      'journal could not be written: in memory only until stored), recovered (left by a killed run, written at start)',
    labelNames: ['result'] as const,
    registers,
    collect() {
      const j = sources.journal?.();
      if (!j) return;
      const now = {
        journaled: j.pointsJournaled,
        not_journaled: j.pointsNotJournaled,
        recovered: j.pointsRecovered,
      };
      for (const result of ['journaled', 'not_journaled', 'recovered'] as const) {
        if (now[result] > journalSeen[result]) this.inc({ result }, now[result] - journalSeen[result]);
        journalSeen[result] = now[result];
      }
    },
  });
  const webhookMessages = new Counter({
    name: 'gpupulse_webhook_messages_total',
    help: 'Webhook messages by result (ok, failed = 4xx or retries exhausted); webhook = URL origin',
    labelNames: ['webhook', 'result'] as const,
    registers,
  });
  const webhookRetries = new Counter({
    name: 'gpupulse_webhook_retries_total',
    help: 'Webhook delivery retries (network error, 5xx, 429)',
    labelNames: ['webhook'] as const,
    registers,
  });
  const webhookRateLimited = new Counter({
    name: 'gpupulse_webhook_rate_limited_total',
    help: 'Alert changes held back by a webhook rate limit (sent as a summary)',
    labelNames: ['webhook'] as const,
    registers,
  });
  const webhookDropped = new Counter({
    name: 'gpupulse_webhook_dropped_total',
    help: 'Webhook messages dropped because the queue was full',
    labelNames: ['webhook'] as const,
    registers,
  });
  new Gauge({
    name: 'gpupulse_alerts_firing',
    help: 'Firing alerts by rule',
    labelNames: ['rule'] as const,
    registers,
    collect() {
      for (const [rule, n] of Object.entries(sources.alertsFiring?.() ?? {})) this.set({ rule }, n);
    },
  });
  const alertTransitions = new Counter({
    name: 'gpupulse_alert_transitions_total',
    help: 'Alerts that fired or resolved, by rule and state',
    labelNames: ['rule', 'state'] as const,
    registers,
  });
  const webhookObserver: WebhookObserver = {
    sent: (result, url) => webhookMessages.inc({ webhook: redact(url), result }),
    retried: (url) => webhookRetries.inc({ webhook: redact(url) }),
    rateLimited: (url, n) => webhookRateLimited.inc({ webhook: redact(url) }, n),
    dropped: (url, n) => webhookDropped.inc({ webhook: redact(url) }, n),
  };

  const writeObserver: WriteBufferObserver = {
    batch(result, points, seconds) {
      writeBatches.inc({ result });
      writeLatency.observe(seconds);
      if (result === 'ok') pointsWritten.inc(points);
      else writeErrors.inc({ kind: result === 'retry' ? 'retryable' : 'rejected' });
    },
    dropped(reason, points) {
      pointsDropped.inc({ reason }, points);
    },
    spooled(points) {
      pointsSpooled.inc(points);
    },
  };
  for (const result of ['ok', 'retry', 'rejected']) writeBatches.inc({ result }, 0);
  for (const reason of ['overflow', 'rejected', 'shutdown', 'spool_full', 'spool_corrupt'])
    pointsDropped.inc({ reason }, 0);

  return {
    registry,
    agentsConnected,
    dashboardsConnected,
    dashboardsDropped,
    agentsRefused,
    samplesReceived,
    sampleReports,
    rejectedPayloads,
    samplesRejected,
    samplesRefused,
    samplesValidated,
    reportsShed,
    malformedFrames,
    deltasSent,
    writeObserver,
    webhookObserver,
    alertsChanged(changed) {
      for (const a of changed) alertTransitions.inc({ rule: a.rule, state: a.state });
    },
  };
}
