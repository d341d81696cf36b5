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

/** Logger → primary. */
export type LoggerMessage = ({ type: 'summary' } & LogSummary) | { type: 'flushed'; written: number; dropped: number };
