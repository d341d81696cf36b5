// What the primary and the logger thread say to each other: the logger's start-up data (its
// workerData), the summary it sends once a second, and the flush handshake that ends a clean shutdown.
// Shared here because primary/ starts the thread that logger/ is, and neither imports the other.

/** The logger thread's workerData. */
export interface LoggerInit {
  ring: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  logFile: string;
  logMaxBytes: number;
  logMaxFiles: number;
  statusIntervalMs: number;
  /** The analytics' SQLite file; undefined with --analytics off. */
  analyticsFile: string | undefined;
  analyticsRetentionHours: number;
  /** The access log (squid or combined format); undefined when there is none. */
  accessLog: { file: string; format: AccessLogFormat } | undefined;
}

export type AccessLogFormat = 'squid' | 'combined';

/** The ranges the analytics answer for, and how wide each point of their series is. */
export const ANALYTICS_RANGES = { '24h': { hours: 24, step: 'hour' }, '7d': { hours: 7 * 24, step: 'hour' }, '30d': { hours: 30 * 24, step: 'day' } } as const;
export type AnalyticsRange = keyof typeof ANALYTICS_RANGES;

/** Requests and bytes of one key (a domain, a client). */
export interface KeyTally {
  name: string;
  requests: number;
  bytesUp: number;
  bytesDown: number;
}

/**
 * What /api/analytics answers, computed by the logger thread from its store. Times are ms since the
 * epoch; a series has one point per step (hour, or UTC day), the first at `from`. "(other)" in a top
 * table is everything beyond its top keys (the store keeps the top N of each hour, analytics.ts).
 */
export interface AnalyticsReport {
  range: AnalyticsRange;
  step: 'hour' | 'day';
  from: number;
  to: number;
  totals: KeyTally;
  decisions: Record<string, number>;
  status: Record<string, number>;
  methods: Record<string, number>;
  cache: Record<string, number>;
  series: { time: number[]; requests: number[]; bytesUp: number[]; bytesDown: number[]; allowed: number[]; blocked: number[]; refused: number[]; limited: number[]; failed: number[] };
  topDomains: KeyTally[];
  topClients: KeyTally[];
  /** Blocked or refused destinations and the rule that did it, most often first. */
  blocked: { domain: string; rule: string; requests: number }[];
  /** The store's size, and the keys the logger thread holds in memory for the hours it is counting. */
  store: { hours: number; rows: number; keysInMemory: number };
}

/** What the logger thread aggregated off the serving path: top hosts and clients, recent lines. */
export interface LogSummary {
  topHosts: [string, number][];
  topClients: [string, number][];
  recent: string[];
}

/** Primary → logger: drain everything, close the file, answer 'flushed', end. */
export interface FlushRequest {
  type: 'flush';
}

/** Primary → logger: count what is in the ring, save, and answer 'analytics' with the same id. */
export interface AnalyticsRequest {
  type: 'analytics';
  id: number;
  range: AnalyticsRange;
}

export type ToLogger = FlushRequest | AnalyticsRequest;

/** Logger → primary. */
export type LoggerMessage =
  | ({ type: 'summary' } & LogSummary)
  | { type: 'ready' } // the log, access log and analytics files are open (primary/fd-budget.ts counts after it)
  | { type: 'flushed'; written: number; dropped: number }
  | { type: 'analytics'; id: number; report: AnalyticsReport | undefined; error?: string };
