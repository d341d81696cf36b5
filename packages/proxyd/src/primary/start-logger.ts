// Start the logger thread (not part of the pool) and ask it to flush at shutdown.
import { Worker } from 'node:worker_threads';
import type { ProxyOptions } from '../config/options.ts';
import type { SharedState } from '../memory/shared-state.ts';

const LOGGER_FILE = new URL('../logger/logger-thread.ts', import.meta.url);

/** What the logger thread sends every second: aggregated off the serving path. */
export interface LogSummary {
  topHosts: [string, number][];
  topClients: [string, number][];
  recent: string[];
}

export interface LoggerThread {
  /** The latest aggregate from the logger thread. */
  summary(): LogSummary;
  /** Drain every record, close the log file, end the thread. */
  flush(timeoutMs?: number): Promise<{ written: number; dropped: number } | undefined>;
}

export function startLoggerThread(shared: SharedState, options: ProxyOptions): LoggerThread {
  const worker = new Worker(LOGGER_FILE, {
    name: 'proxyd-logger',
    workerData: {
      ring: shared.buffers.ring,
      stats: shared.buffers.stats,
      logFile: options.logFile,
      logMaxBytes: options.logMaxBytes,
      logMaxFiles: options.logMaxFiles,
      statusIntervalMs: options.statusIntervalMs,
    },
  });
  worker.on('error', (err) => process.stderr.write(`proxyd: the logger thread failed: ${err.stack ?? err}\n`));
  let latest: LogSummary = { topHosts: [], topClients: [], recent: [] };
  worker.on('message', (m: { type: string } & Partial<LogSummary>) => {
    if (m.type === 'summary') latest = m as LogSummary;
  });
  return {
    summary: () => latest,
    flush(timeoutMs = 10_000) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          process.stderr.write('proxyd: the logger thread did not flush in time\n');
          void worker.terminate().then(() => resolve(undefined));
        }, timeoutMs);
        worker.on('message', (m: { type: string; written: number; dropped: number }) => {
          if (m.type !== 'flushed') return;
          clearTimeout(timer);
          worker.once('exit', () => resolve({ written: m.written, dropped: m.dropped }));
        });
        worker.postMessage({ type: 'flush' });
      });
    },
  };
}
