import { enAccess } from './en-access.ts';
import { enMetrics } from './en-metrics.ts';
import { enNudges } from './en-nudges.ts';
import { enReports } from './en-reports.ts';
import { enViews } from './en-views.ts';
import { enWall } from './en-wall.ts';

/** English messages: the reference shape every other locale must match. */
export const en = {
  app: {
    name: 'gpupulse',
    tagline: 'Live GPU telemetry',
    skipToContent: 'Skip to content',
  },
  nav: {
    label: 'Views',
    cluster: 'Cluster',
    comingSoon: 'Projects, trends and my work: coming soon',
  },
  settings: {
    language: 'Language',
    theme: 'Theme',
    dark: 'Dark',
    light: 'Light',
    switchToLight: 'Switch to light theme',
    switchToDark: 'Switch to dark theme',
  },
  connection: {
    label: 'Server connection',
    connecting: 'Connecting',
    connected: 'Connected',
    reconnecting: 'Reconnecting',
    disconnected: 'Disconnected',
  },
  freshness: {
    updated: 'Updated {ago}',
    stale: 'Stale: updated {ago}',
    never: 'No data yet',
  },
  banner: {
    disconnected: 'Lost the connection to the server. Retrying; the figures below are not live.',
    reconnecting: 'Reconnecting to the server… The figures below are not live.',
    storageMemory: 'In-memory storage: no history survives a server restart.',
    storageDown: 'Storage is not accepting writes: live view only, history may have gaps.',
    /** The server's `storage.warningCode`, said here (the server's English text is the fallback). */
    storageCodes: {
      memory:
        'Only the last 2 hours are kept. For lasting history, set GPUPULSE_INFLUX_URL or install influxd.',
      'memory-influxd-failed':
        'The managed InfluxDB (influxd) failed to start: only the last 2 hours are kept.',
      'influx-unreachable': 'InfluxDB does not answer (the server log names its address and the error).',
    },
  },
  empty: {
    connecting: 'Connecting to the server…',
    noAgents: 'No agents connected yet',
    noAgentsHint: 'Start one on a GPU node with {command}, or simulate a fleet with {sim}.',
    unreachable: 'Cannot reach the server. Retrying…',
  },
  headline: {
    label: 'Fleet summary',
    gpus: 'GPUs',
    busy: 'Busy',
    idle: 'Idle',
    unknown: 'Unknown',
    offline: 'Offline',
    ofTotal: 'of {total}',
    meanUtilization: 'Mean utilization',
    meanUtilizationHint: 'over GPUs with known utilization',
    power: 'GPU power',
    nodes: 'Nodes',
    online: 'Online',
    stale: 'Stale',
  },
  status: {
    online: 'Online',
    stale: 'Stale',
    offline: 'Offline',
  },
  collector: {
    absent: 'no nvidia-smi',
    stale: 'GPU data stale',
    error: 'GPU collector error',
  },
  grid: {
    title: 'Every GPU',
    description: 'GPU tiles grouped by node, coloured by utilization',
    legendLow: '0%',
    legendHigh: '100%',
    legendUnknown: 'unknown',
    legendOffline: 'offline',
    legendHot: 'hot (≥ {temp})',
  },
  gpu: {
    title: 'GPU {index}',
    utilization: 'Utilization',
    memory: 'Memory',
    temperature: 'Temperature',
    power: 'Power',
    project: 'Project',
    noProject: 'no process',
    unassigned: 'Unassigned',
    unknown: 'unknown',
    activity: {
      offline: 'Offline (node not reporting)',
      unknown: 'Unknown (stale data)',
      inUse: 'In use',
      idleHeld: 'Held but idle',
      free: 'Free',
    },
    hot: 'Hot',
    state: 'State',
    stateStale: 'stale',
    stateError: 'error',
    nodeOffline: 'node offline',
    nodeStale: 'node stale',
    throttle: 'Clock events',
  },
  nodes: {
    title: 'Nodes',
    count: 'no nodes | {n} node | {n} nodes',
    node: 'Node',
    status: 'Status',
    gpus: 'GPUs',
    meanUtil: 'Mean util.',
    maxTemp: 'Max temp.',
    cpu: 'CPU',
    gpuUtil: 'Per-GPU utilization',
    gpuCellLabel: 'GPU {index}: {value}',
  },
  ...enViews,
  ...enWall,
  ...enMetrics,
  ...enAccess,
  ...enNudges,
  ...enReports,
} as const;

/** Structural type of a message catalogue: same keys, any string values. */
type Widen<T> = { [K in keyof T]: T[K] extends string ? string : Widen<T[K]> };
export type MessageSchema = Widen<typeof en>;
