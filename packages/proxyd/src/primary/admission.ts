// Admission: every accepted connection waits here, paused, for a semaphore permit. FIFO; a full queue
// or a wait past --queue-timeout is answered 503 with Retry-After and closed.
import type net from 'node:net';
import type { ProxyOptions } from '../config/options.ts';
import { rawRefusal } from '../policy/refusals.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { WaitHistogram } from './wait-histogram.ts';

export type Admission = 'admitted' | 'refused';

export async function admit(shared: SharedState, options: ProxyOptions, socket: net.Socket, id: number, client: string, waits: WaitHistogram): Promise<Admission> {
  const { semaphore, stats, log } = shared;
  if (semaphore.tryAcquire()) {
    waits.observe(0);
    return 'admitted';
  }

  stats.add('queued');
  stats.add('waiting', 1);
  log.write({ event: 'queued', conn: id, client, waiting: semaphore.waiting + 1, active: semaphore.held });
  const started = performance.now();
  // Waits with Atomics.waitAsync on this connection's ticket: the primary's event loop keeps accepting.
  const result = await semaphore.acquireAsync({ timeoutMs: options.queueTimeoutMs });
  stats.add('waiting', -1);
  const waitedMs = Math.round(performance.now() - started);
  waits.observe(waitedMs / 1000);
  if (result === 'acquired') {
    log.write({ event: 'dequeued', level: 'debug', conn: id, client, waitedMs });
    return 'admitted';
  }

  const code = result === 'queue-full' ? 'QUEUE_FULL' : 'QUEUE_TIMEOUT';
  stats.add(result === 'queue-full' ? 'queueFull' : 'queueTimeouts');
  log.write({ event: result === 'queue-full' ? 'queue-full' : 'queue-timeout', level: 'warn', conn: id, client, waitedMs, maxWaiting: options.maxWaiting });
  const retryAfter = String(Math.max(1, Math.ceil(options.queueTimeoutMs / 1000 / 4)));
  socket.resume(); // read and discard what the client sent, so closing does not reset the connection
  socket.end(rawRefusal(code, '', { 'Retry-After': retryAfter }));
  setTimeout(() => socket.destroy(), 2000).unref();
  return 'refused';
}
