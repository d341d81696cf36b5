/**
 * Mutex — the three-state futex mutex from Ulrich Drepper, "Futexes Are Tricky" (2011), mutex #2.
 *
 * One Int32 word in shared memory holds the whole lock:
 *
 *     0  FREE       nobody holds the lock
 *     1  LOCKED     somebody holds it and nobody is waiting
 *     2  CONTENDED  somebody holds it and at least one thread may be asleep waiting for it
 *
 * lock():    compareExchange(0 → 1). If that worked we own the lock: the uncontended cost is one atomic
 *            instruction and no system call. Otherwise we announce that we are about to sleep by
 *            exchanging the word to 2, and sleep with Atomics.wait(word, 2) for as long as the word is 2.
 *            Each time we wake we exchange(2) again: if the old value was 0 the lock was free and is now
 *            ours (held in state 2, because we cannot know whether others still sleep; at worst that costs
 *            one unneeded notify later).
 * unlock():  compareExchange(1 → 0). If that worked nobody waits: done, no system call. If it saw 2, somebody
 *            may sleep: store 0 and wake exactly one sleeper with Atomics.notify(word, 1). No other thread
 *            can move the word away from 2 while it is held (lockers only exchange 2 for 2), so a store
 *            without a CAS cannot overwrite anything. If it saw 0 the mutex was not locked: a bug in the
 *            caller, and unlock() throws having written nothing.
 *
 * Why unlock() compares before it writes: Drepper's unlock is atomic_dec (here Atomics.sub), one atomic
 * instruction like the CAS, but on a free mutex it stores −1 for a moment. A lock() that sees −1 takes the
 * slow path, exchanges in 2 and may fall asleep just before the faulty unlock stores 0 back — without a
 * notify, so it sleeps on a free mutex with nobody left to wake it. With compare-and-swap a misused
 * unlock() sees 0, leaves the word alone and throws; the word only ever holds 0, 1 or 2. (A mutex keeps
 * no owner, so an unlock() from a thread that does not hold a *locked* mutex cannot be told apart from
 * the holder's: that misuse still releases the lock.)
 *
 * Why no wake-up is ever lost: a sleeper passes "2" as the expected value to Atomics.wait, and the wait
 * atomically re-checks the word before sleeping. If unlock stored 0 between our exchange and our wait, the
 * wait returns "not-equal" at once and we loop to exchange again.
 *
 * lockAsync() is the same algorithm with Atomics.waitAsync (through waitAsyncUntil, wait.ts), for threads
 * that run an event loop and must not block it. A mutex whose critical section is a bounded copy (a log
 * record into the ring) may be taken with the blocking lock() from any thread: the slow path waits
 * microseconds. That is the futex bargain.
 *
 * The word after the lock counts how often lock() found the mutex taken (contention), for the dashboard.
 */
import { waitAsyncUntil } from './wait.ts';

const FREE = 0;
const LOCKED = 1;
const CONTENDED = 2;

const STATE = 0;
const CONTENTION = 1;

export class Mutex {
  /** Int32 words one mutex occupies: [state, contention count]. */
  static readonly WORDS = 2;
  static readonly BYTES = Mutex.WORDS * Int32Array.BYTES_PER_ELEMENT;

  readonly buffer: SharedArrayBuffer;
  readonly byteOffset: number;
  readonly #words: Int32Array;

  /** Create a mutex in a new buffer, or attach to one that another thread created (same buffer, same offset). */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(Mutex.BYTES), byteOffset = 0) {
    this.buffer = buffer;
    this.byteOffset = byteOffset;
    this.#words = new Int32Array(buffer, byteOffset, Mutex.WORDS);
  }

  /** Take the lock if it is free, without waiting. */
  tryLock(): boolean {
    return Atomics.compareExchange(this.#words, STATE, FREE, LOCKED) === FREE;
  }

  /** Take the lock, blocking the calling thread while another holds it. */
  lock(): void {
    let seen = Atomics.compareExchange(this.#words, STATE, FREE, LOCKED);
    if (seen === FREE) return; // fast path: one CAS, no system call
    Atomics.add(this.#words, CONTENTION, 1);
    // Slow path: mark the lock CONTENDED so that the holder's unlock() will wake us.
    if (seen !== CONTENDED) seen = Atomics.exchange(this.#words, STATE, CONTENDED);
    while (seen !== FREE) {
      // Sleeps only while the word is still 2; an unlock in between makes this return "not-equal".
      Atomics.wait(this.#words, STATE, CONTENDED);
      seen = Atomics.exchange(this.#words, STATE, CONTENDED);
    }
  }

  /** Take the lock without blocking the event loop: resolves once the lock is ours. */
  async lockAsync(): Promise<void> {
    let seen = Atomics.compareExchange(this.#words, STATE, FREE, LOCKED);
    if (seen === FREE) return;
    Atomics.add(this.#words, CONTENTION, 1);
    if (seen !== CONTENDED) seen = Atomics.exchange(this.#words, STATE, CONTENDED);
    while (seen !== FREE) {
      // Resolves on a notify, or at once ('not-equal') if an unlock stored 0 since our exchange. No
      // deadline, so no timer: a thread that awaits the lock keeps itself alive by other means.
      await waitAsyncUntil(this.#words, STATE, CONTENDED);
      seen = Atomics.exchange(this.#words, STATE, CONTENDED);
    }
  }

  /** Release the lock. Unlocking a free mutex is a bug in the caller: it throws and changes nothing. */
  unlock(): void {
    // LOCKED → FREE in one step, and the CAS tells us what was there without writing anything else.
    const seen = Atomics.compareExchange(this.#words, STATE, LOCKED, FREE);
    if (seen === LOCKED) return; // nobody waits: no system call
    if (seen === FREE) throw new Error('Mutex.unlock(): the mutex is not locked'); // nothing was written
    // seen === CONTENDED, and it stays 2 until we write (lockers only exchange 2 for 2 while it is held):
    // hand the lock back to FREE, then wake one sleeper, who will retake it with exchange(2).
    Atomics.store(this.#words, STATE, FREE);
    Atomics.notify(this.#words, STATE, 1);
  }

  /** Run fn while holding the lock (blocking lock; keep fn short and bounded). */
  withLock<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /** True while somebody holds the lock (a snapshot, for display only). */
  get locked(): boolean {
    return Atomics.load(this.#words, STATE) !== FREE;
  }

  /** How many lock() / lockAsync() calls found the mutex already taken. */
  get contention(): number {
    return Atomics.load(this.#words, CONTENTION);
  }
}
