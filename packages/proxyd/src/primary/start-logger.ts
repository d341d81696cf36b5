// Start the logger thread (not part of the pool: logger/logger-thread.ts is the thread) and ask it to
// flush at shutdown.
import { Worker } from 'node:worker_threads';
import type { ProxyOptions } from '../config/options.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { FlushRequest, LoggerInit, LoggerMessage, LogSummary } from '../messages/logger-messages.ts';
import { LOGGER_FILE } from './thread-files.ts';

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
    } satisfies LoggerInit,
  });
  worker.on('error', (err) => process.stderr.write(`proxyd: the logger thread failed: ${err.stack ?? err}\n`));
  let latest: LogSummary = { topHosts: [], topClients: [], recent: [] };
  worker.on('message', (m: LoggerMessage) => {
    if (m.type === 'summary') latest = { topHosts: m.topHosts, topClients: m.topClients, recent: m.recent };
  });
  return {
    summary: () => latest,
    flush(timeoutMs = 10_000) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          process.stderr.write('proxyd: the logger thread did not flush in time\n');
          void worker.terminate().then(() => resolve(undefined));
        }, timeoutMs);
        worker.on('message', (m: LoggerMessage) => {
          if (m.type !== 'flushed') return;
          clearTimeout(timer);
          worker.once('exit', () => resolve({ written: m.written, dropped: m.dropped }));
        });
        worker.postMessage({ type: 'flush' } satisfies FlushRequest);
      });
    },
  };
}
