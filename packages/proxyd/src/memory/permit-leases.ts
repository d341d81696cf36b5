/**
 * PermitLeases — makes "release the permit exactly once per connection" true even when the worker
 * thread serving the connection dies.
 *
 * Each admitted connection gets a lease: one Int32 word in shared memory, set to HELD by the primary
 * when the semaphore admits the connection. Two threads may try to give the permit back: the worker,
 * when the connection closes, and the primary, when the worker's task ends or fails (a dead worker never
 * closes its connections cleanly). Whoever moves the word HELD → RELEASED with compare-and-swap releases
 * the semaphore; the other finds RELEASED and does nothing. The primary alone hands out leases and takes
 * them back (RELEASED → FREE) once the task has settled, so the free list needs no lock.
 *
 * A lease outlives its permit by the time the task's "settled" message takes to reach the primary: the
 * worker's release() may already have admitted the next connection, which needs a lease of its own.
 * So the table holds more leases than there are permits (see LEASE_SLACK in shared-state.ts).
 */
import type { Semaphore } from '@proxyd/sync/semaphore';

const FREE = 0;
const HELD = 1;
const RELEASED = 2;

export class PermitLeases {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #free: number[] = []; // primary only

  static create(size: number): PermitLeases {
    const leases = new PermitLeases(new SharedArrayBuffer(size * 4));
    for (let i = size - 1; i >= 0; i--) leases.#free.push(i);
    return leases;
  }

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer);
  }

  /** Primary: a lease for a connection that was just admitted, or -1 if every lease is out. */
  take(): number {
    const lease = this.#free.pop();
    if (lease === undefined) return -1;
    Atomics.store(this.#words, lease, HELD);
    return lease;
  }

  /** Any thread: release the permit if nobody has yet. True if this call released it. */
  release(lease: number, semaphore: Semaphore): boolean {
    if (Atomics.compareExchange(this.#words, lease, HELD, RELEASED) !== HELD) return false;
    semaphore.release();
    return true;
  }

  /** Primary, after the connection's task settled: make sure the permit is back, recycle the lease. */
  retire(lease: number, semaphore: Semaphore): boolean {
    const releasedHere = this.release(lease, semaphore);
    Atomics.store(this.#words, lease, FREE);
    this.#free.push(lease);
    return releasedHere;
  }
}
