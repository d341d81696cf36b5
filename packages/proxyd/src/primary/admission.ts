// Admission: every accepted connection waits here, paused, for a semaphore permit. FIFO; a full queue
// or a wait past --queue-timeout is answered 503 with Retry-After and closed.
import type net from 'node:net';
import type { AcceptedConnection, PrimaryState } from './primary-state.ts';
import { refuseAtAccept } from './refuse-raw.ts';

export type Admission = 'admitted' | 'refused';

/**
 * A permit at once, when one is free and nobody waits (the common case): the caller hands over in the
 * same turn, without a Promise and a later turn per connection.
 */
export function admitNow(state: PrimaryState): boolean {
  if (!state.shared.semaphore.tryAcquire()) return false;
  state.waits.observe(0);
  return true;
}

/** No permit free: join the FIFO queue, and settle when admitted or refused (already answered 503). */
export async function admitQueued(state: PrimaryState, socket: net.Socket, conn: AcceptedConnection): Promise<Admission> {
  const { semaphore, stats, log } = state.shared;
  if (semaphore.tryAcquire()) {
    // Freed since admitNow() looked (a worker's release), or called without it.
    state.waits.observe(0);
    return 'admitted';
  }

  const { queueTimeoutMs, maxWaiting } = state.options;
  // Only this thread joins the queue and other threads only shorten it, so a queue with room now still
  // has room when acquireAsync() takes the ticket: a client refused as queue-full is never logged as queued.
  const willQueue = semaphore.waiting < semaphore.maxWaiting;
  if (willQueue) {
    stats.add('queued');
    stats.add('waiting', 1);
    log.write({ event: 'queued', conn: conn.id, client: conn.client, waiting: semaphore.waiting + 1, active: semaphore.held });
  }
  const started = performance.now();
  // Waits with Atomics.waitAsync on this connection's ticket: the primary's event loop keeps accepting.
  const result = await semaphore.acquireAsync({ timeoutMs: queueTimeoutMs });
  if (willQueue) stats.add('waiting', -1);
  const waitedMs = Math.round(performance.now() - started);
  state.waits.observe(waitedMs / 1000);
  if (result === 'acquired') {
    log.write({ event: 'dequeued', level: 'debug', conn: conn.id, client: conn.client, waitedMs });
    return 'admitted';
  }

  const code = result === 'queue-full' ? 'QUEUE_FULL' : 'QUEUE_TIMEOUT';
  stats.add(result === 'queue-full' ? 'queueFull' : 'queueTimeouts');
  log.write({ event: result === 'queue-full' ? 'queue-full' : 'queue-timeout', level: 'warn', conn: conn.id, client: conn.client, waitedMs, maxWaiting });
  refuseAtAccept(socket, code, '', queueTimeoutMs / 4);
  return 'refused';
}
