// Hand-over: an admitted connection gets a permit lease and is transferred to a serving thread. Whatever
// happens to that thread, the permit comes back exactly once (PermitLeases: whoever moves the lease
// HELD → RELEASED first gives the permit back, the worker on close or the primary when the task settles).
import type net from 'node:net';
import { debugLogged } from '../memory/debug-logged.ts';
import { rawRefusal } from '../policy/refusals.ts';
import type { AcceptedConnection, PrimaryState } from './primary-state.ts';

export function handOver(state: PrimaryState, socket: net.Socket, conn: AcceptedConnection): void {
  const { stats, log, leases, semaphore } = state.shared;
  const lease = leases.take();
  if (lease < 0) {
    // Only if finished tasks stop reporting back: refuse rather than lose track of a permit.
    semaphore.release();
    state.caps.close(conn);
    log.write({ event: 'lease-table-full', level: 'error', conn: conn.id, client: conn.client });
    socket.resume();
    return void socket.end(rawRefusal('QUEUE_FULL', 'internal lease table full', { 'Retry-After': '1' }));
  }
  stats.add('admitted');
  stats.add('active', 1);
  if (debugLogged(state.shared)) log.write({ event: 'admitted', level: 'debug', conn: conn.id, client: conn.client, active: semaphore.held, waiting: semaphore.waiting });
  state.queued.delete(socket); // after the transfer the socket is the worker's; this handle is destroyed
  conn.handedOver = true; // from here its task's end, not this handle's close, ends its count
  // One settle function for both outcomes: a .catch().finally() chain cost two more Promises per connection.
  const settle = (err?: Error): void => {
    if (err) {
      // The worker died with this connection open: its socket died with it. Count and log it.
      stats.add('workerErrors');
      log.write({ event: 'worker-error', level: 'error', conn: conn.id, client: conn.client, error: err.message });
    }
    // Exactly once: if the worker did not release the permit, this does.
    if (leases.retire(lease, semaphore)) stats.add('active', -1);
    state.caps.close(conn);
    state.tasks.delete(task);
  };
  const task = state.serving.serve({ socket, lease, id: conn.id, client: conn.client, address: conn.address, key: conn.key });
  task.then(() => settle(), settle);
  state.tasks.add(task);
}
