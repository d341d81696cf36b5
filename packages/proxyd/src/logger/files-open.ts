// When a winston logger's files are open. winston's File transport opens its file asynchronously (a
// stat, then fs.createWriteStream) and emits 'open' when the descriptor is there. The primary counts the
// process's open descriptors once the threads are up (primary/fd-budget.ts: what the proxy holds
// before any client), so the logger thread says it is ready only after its files are open.
import winston from 'winston';

/**
 * Resolves once every File transport of `logger` has opened its file, or said it failed ('error': a stat
 * that failed). winston 3.19 reports a failed open() to nobody; the primary's wait is bounded for that
 * (start-logger.ts), and start-up has made the file already (primary/load-files.ts), so it is rare.
 */
export function filesOpen(logger: winston.Logger): Promise<void> {
  const files = logger.transports.filter((transport) => transport instanceof winston.transports.File);
  return Promise.all(
    files.map((file) => new Promise<void>((resolve) => {
      file.once('open', () => resolve());
      file.once('error', () => resolve());
    })),
  ).then(() => undefined);
}
