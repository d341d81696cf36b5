/**
 * PermitLeases — "give the permit back exactly once", even when two threads may both try, and even when
 * the thread that holds the permit dies.
 *
 * The problem. A permit taken from a Semaphore must go back exactly once. Never, and the semaphore has
 * one permit fewer for good; twice, and the second release() gives back a permit somebody else still
 * holds, so one holder too many gets in. With one owner per permit that is easy. But a thread that dies
 * (a worker that crashes) never runs its clean-up, so a second party — the thread that handed out the
 * work — must be able to give the permit back on its behalf, and then both may try: the holder on its
 * normal path, the supervisor when it learns the work is over. The obvious guard is a check-then-act,
 *
 *     if (flag[lease] === HELD) { flag[lease] = RELEASED; semaphore.release(); }   // NOT safe
 *
 * and two threads can both pass the check before either writes the flag: a double release
 * (test/permit-leases.test.ts makes it happen).
 *
 * The lease: one Int32 word in a SharedArrayBuffer per permit handed out, plus a free list.
 *
 *     0  FREE      on the free list, unused
 *     1  HELD      handed out with a permit that has not been given back
 *     2  RELEASED  the permit has been given back; the lease waits to be retired
 *
 *     take()     FREE ──store──▶ HELD                                  owner thread only
 *     release()  HELD ──compareExchange──▶ RELEASED, then
 *                semaphore.release(), by the thread whose CAS won      any thread, any number of times
 *     retire()   release(), then ──store──▶ FREE, onto the free list   owner thread only
 *
 * Exactly once. release() is a single Atomics.compareExchange(word, HELD, RELEASED): one indivisible
 * read-modify-write, so of any number of threads racing on one HELD lease exactly one reads HELD (and
 * writes RELEASED); every other reads RELEASED and returns false without touching the semaphore. Only the
 * winner calls semaphore.release(). The check and the act are one instruction; there is no in-between.
 *
 * Who may call what, and why the free list needs no lock. One thread owns the table (in proxyd the
 * primary, which admits connections): only it calls take() and retire(), and it hands the lease's number
 * to the holder with the work (for a worker thread: in the task's message, which orders take()'s store
 * before anything the holder does). The free list is an ordinary array in the owner's own memory, not in
 * the SharedArrayBuffer: no other thread can even see it, so pushing and popping it needs no lock and no
 * Atomics. Other threads see only the words, and only ever move them HELD → RELEASED.
 *
 * Why retire() may store FREE without a CAS. The owner retires a lease only when no other thread can
 * still call release() on it — in proxyd, once the task that carried the lease number has settled
 * (finished, or its worker died), which the owner learns from a message. After that point nothing races
 * the word: it is HELD (nobody released: retire() does it, through the same CAS, and returns true) or
 * RELEASED (returns false), and the plain store recycles it. Retiring earlier would be a bug: a late
 * release() on the recycled lease would give back the next holder's permit.
 *
 * Sizing. A lease outlives its permit: the holder's release() gives the permit back at once, and the
 * semaphore may admit the next waiter at once — who needs a lease of its own — while the first lease is
 * RELEASED but not yet retired, until the owner hears that its holder is done. So the table should hold
 * more leases than the semaphore has permits, by as many as can be between release and retirement at
 * once (proxyd adds a slack for tasks whose "settled" message has not arrived yet). With every lease out,
 * take() answers −1 and the owner decides (proxyd refuses the connection).
 */
import type { Semaphore } from './semaphore.ts';

const FREE = 0;
const HELD = 1;
const RELEASED = 2;

export class PermitLeases {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  /** Leases not in use — owner thread only, and not shared: only the owner can see it, so no lock. */
  readonly #free: number[] = [];

  /** Create `size` leases, all FREE, owned by the calling thread. */
  static create(size: number): PermitLeases {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`PermitLeases size must be an integer ≥ 1, got ${size}`);
    const leases = new PermitLeases(new SharedArrayBuffer(size * Int32Array.BYTES_PER_ELEMENT));
    for (let i = size - 1; i >= 0; i--) leases.#free.push(i); // take() hands out 0, 1, 2, … first
    return leases;
  }

  /**
   * Attach to leases created in another thread, from their buffer. An attached table has an empty free
   * list: it may release() leases, not take() or retire() them.
   */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer);
  }

  /** Owner: a lease for a permit just acquired, or −1 if every lease is out. */
  take(): number {
    const lease = this.#free.pop();
    if (lease === undefined) return -1;
    // FREE → HELD. No CAS needed: nobody else writes a FREE lease (release()'s CAS fails on it). Still an
    // Atomics.store, as every access to a shared word is: the holder's CAS, made after it receives the
    // lease number, must see HELD.
    Atomics.store(this.#words, lease, HELD);
    return lease;
  }

  /** Any thread: give the lease's permit back if nobody has yet. True if this call gave it back. */
  release(lease: number, semaphore: Semaphore): boolean {
    // The whole algorithm: one CAS. Exactly one caller sees HELD and moves it to RELEASED; every other
    // caller (and any call on a FREE lease) sees something else, writes nothing and returns false.
    if (Atomics.compareExchange(this.#words, lease, HELD, RELEASED) !== HELD) return false;
    semaphore.release(); // only the CAS winner reaches this line, so once per take()
    return true;
  }

  /**
   * Owner, once no other thread can call release() on this lease any more: make sure its permit is back,
   * and recycle the lease. True if this call gave the permit back (its holder never did).
   */
  retire(lease: number, semaphore: Semaphore): boolean {
    const releasedHere = this.release(lease, semaphore);
    // RELEASED → FREE: no release() can race this store any more (the caller's promise above), and a
    // release() on a FREE lease fails its CAS anyway.
    Atomics.store(this.#words, lease, FREE);
    this.#free.push(lease);
    return releasedHere;
  }
}
