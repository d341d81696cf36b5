// Start the logger thread (not part of the pool: logger/logger-thread.ts is the thread) and ask it to
// flush at shutdown.
import { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import type { ProxyOptions } from '../config/options.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { AnalyticsRange, AnalyticsReport, LoggerInit, LoggerMessage, LogSummary, ToLogger } from '../messages/logger-messages.ts';
import { LOGGER_FILE } from './thread-files.ts';

/** Where the analytics live unless --analytics-file says: this file, beside the log file. */
export const ANALYTICS_FILE_NAME = 'analytics.sqlite';

/** The analytics' file for these options; undefined with --analytics off. */
export function analyticsFile(options: Pick<ProxyOptions, 'analytics' | 'analyticsFile' | 'logFile'>): string | undefined {
  if (options.analytics === 'off') return undefined;
  return options.analyticsFile ?? join(dirname(options.logFile), ANALYTICS_FILE_NAME);
}

/** How long the logger thread may take to answer an analytics query. */
const ANALYTICS_TIMEOUT_MS = 10_000;

/** How long start waits for the logger's 'ready' before it counts descriptors anyway (a slow disk). */
const READY_TIMEOUT_MS = 5_000;

export interface LoggerThread {
  /**
   * Resolves once the logger thread has its files open (its 'ready'), or has ended, or after
   * READY_TIMEOUT_MS: start-proxy.ts counts the proxy's own descriptors after it (fd-budget.ts).
   */
  ready: Promise<void>;
  /** The latest aggregate from the logger thread. */
  summary(): LogSummary;
  /** The analytics for a range, as the logger thread counts them (every record written so far included). */
  analytics(range: AnalyticsRange): Promise<AnalyticsReport>;
  /** Drain every record, close the log file, end the thread. */
  flush(timeoutMs?: number): Promise<{ written: number; dropped: number } | undefined>;
}

export function startLoggerThread(shared: SharedState, options: ProxyOptions): LoggerThread {
  const worker = new Worker(LOGGER_FILE, {
    name: 'proxyd-logger',
    // A small young generation (1 MiB semi-spaces): the logger turns records into lines in batches and
    // keeps little; bin/proxyd.js gives the serving threads 8 MiB (issue 20).
    resourceLimits: { maxYoungGenerationSizeMb: 3 },
    workerData: {
      ring: shared.buffers.ring,
      stats: shared.buffers.stats,
      logFile: options.logFile,
      logMaxBytes: options.logMaxBytes,
      logMaxFiles: options.logMaxFiles,
      statusIntervalMs: options.statusIntervalMs,
      analyticsFile: analyticsFile(options),
      analyticsRetentionHours: options.analyticsRetentionHours,
      accessLog: options.accessLog === undefined ? undefined : { file: options.accessLog, format: options.accessLogFormat },
    } satisfies LoggerInit,
  });
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      process.stderr.write(`proxyd: the logger thread has not opened its files after ${READY_TIMEOUT_MS / 1000} s; going on\n`);
      resolve();
    }, READY_TIMEOUT_MS);
    timer.unref();
    markReady = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  worker.on('error', (err) => process.stderr.write(`proxyd: the logger thread failed: ${err.stack ?? err}\n`));
  let latest: LogSummary = { topHosts: [], topClients: [], recent: [] };
  const queries = new Map<number, { resolve: (report: AnalyticsReport) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let lastQuery = 0;
  worker.on('message', (m: LoggerMessage) => {
    if (m.type === 'ready') markReady();
    if (m.type === 'summary') latest = { topHosts: m.topHosts, topClients: m.topClients, recent: m.recent };
    if (m.type !== 'analytics') return;
    const query = queries.get(m.id);
    if (!query) return;
    queries.delete(m.id);
    clearTimeout(query.timer);
    if (m.report) query.resolve(m.report);
    else query.reject(new Error(m.error ?? 'no analytics'));
  });
  let exited = false;
  worker.once('exit', () => {
    exited = true;
    markReady();
    for (const query of queries.values()) {
      clearTimeout(query.timer);
      query.reject(new Error('the logger thread has ended'));
    }
    queries.clear();
  });
  return {
    ready,
    summary: () => latest,
    analytics(range) {
      const id = ++lastQuery;
      return new Promise<AnalyticsReport>((resolve, reject) => {
        const timer = setTimeout(() => {
          queries.delete(id);
          reject(new Error('the logger thread did not answer in time'));
        }, ANALYTICS_TIMEOUT_MS);
        queries.set(id, { resolve, reject, timer });
        worker.postMessage({ type: 'analytics', id, range } satisfies ToLogger);
      });
    },
    flush(timeoutMs = 10_000) {
      if (exited) return Promise.resolve(undefined); // it failed earlier (said on stderr): nothing to wait for
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
        worker.postMessage({ type: 'flush' } satisfies ToLogger);
      });
    },
  };
}
