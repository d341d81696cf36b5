/**
 * Semaphore — a counting semaphore that admits waiters in arrival order ("take a number"), over one
 * SharedArrayBuffer that every thread attaches to.
 *
 * The plain counting semaphore is one word of free permits: acquire decrements it when it is above zero,
 * release increments it and wakes a sleeper. It is not fair: a thread that arrives just as a permit is
 * released can grab it before the sleeper that was woken for it (barging), and a waiter can wait forever.
 * A proxy's admission queue must be fair, so this one works like the ticket machine at a deli counter:
 *
 *     words:  [mutex ×2][permits][free][nextTicket][nowServing][waiting][maxWaiting][admitted][slots …]
 *
 *     nextTicket ─────────────┐         every arrival that cannot be admitted at once takes ticket
 *     nowServing ──┐          │         t = nextTicket++ and sleeps on its own slot, slots[t mod size]
 *                  ▼          ▼
 *     slots:  … [t:W][t+1:C][t+2:W][ ] …   W = WAITING, A = ADMITTED, C = CANCELLED
 *
 * A slot word holds its ticket number and its state together, (ticket << 2) | state, so that one
 * compare-and-swap checks both "is this still ticket t?" and "is it still waiting?". A slot is reused one
 * lap later (ticket t + size) only after ticket t has left the queue, so an admitted waiter need not
 * clean up after itself: any value other than "t: WAITING" tells it that it was admitted.
 *
 * release() gives the permit back (free++) and then admits from the head of the queue while permits are
 * free: slot nowServing goes WAITING → ADMITTED by compare-and-swap, and Atomics.notify wakes exactly the
 * thread (or async task) sleeping on that slot. A waiter that gives up (timeout or AbortSignal) turns its
 * own slot WAITING → CANCELLED by compare-and-swap; exactly one of the two CASes can win, so a permit is
 * never handed to a waiter that has left and never lost: if admission won, the waiter holds the permit
 * (and releases it if it no longer wants it). Cancelled tickets are skipped when they reach the head.
 *
 * The counters (free, nextTicket, nowServing) change together, so they are changed under a Mutex; the
 * critical sections are a few word updates, bounded, so taking it with the blocking lock() is fine from
 * any thread (see mutex.ts). The waiting itself is on the slot, never under the mutex: Atomics.wait
 * (blocking, for threads that may block) or Atomics.waitAsync (for threads with an event loop, through
 * waitAsyncUntil in wait.ts, which holds a timer until the deadline so that the thread lives to see it).
 *
 * Who touches which word, and how:
 *
 *   permits, maxWaiting, slotMask   written once by create(), before the buffer is handed to another
 *                                   thread; read anywhere, never changed.
 *   free, nextTicket, nowServing    change only under the mutex: release() and #cancel() (through
 *                                   #admitFromHead), #enqueue(), tryAcquire(). Under the mutex they are
 *                                   read plainly: the mutex's own Atomics order every earlier change before
 *                                   them. They are still *written* with Atomics, because the getters read
 *                                   them without the mutex (free, held, tickets) and a read outside the
 *                                   mutex must race only with atomic writes. Each getter reads each word
 *                                   whole, as it was at some instant, but two words (or two getters) are
 *                                   not one picture: held = permits − free is exact only when nothing moves.
 *                                   Getters are display snapshots; nothing decides anything from them.
 *   waiting                         +1 under the mutex when a ticket is issued, −1 under the mutex when
 *                                   admission wins a slot, and −1 *outside* it by #cancel() right after the
 *                                   waiter wins its own slot. Always Atomics.add/sub/load, also under the
 *                                   mutex. Between a cancel's CAS and its decrement it counts one waiter
 *                                   that has left, so #enqueue() may answer 'queue-full' a moment early —
 *                                   never late: the queue never holds more than maxWaiting live waiters.
 *   admittedTotal                   Atomics.add under the mutex, Atomics.load anywhere (a statistic).
 *   slot words                      written by #enqueue() (store "t: WAITING") and #admitFromHead() (CAS
 *                                   WAITING → ADMITTED), both under the mutex; CAS'd WAITING → CANCELLED by
 *                                   the waiter in #cancel() and read by the waiter (load, Atomics.wait's
 *                                   compare), both outside it. Always through Atomics. The CAS is what
 *                                   makes the race between admission and cancellation safe without the
 *                                   waiter taking the mutex first: exactly one of the two CASes finds
 *                                   "t: WAITING".
 *
 * Ticket wrap-around, and why the 30-bit tag is free of ABA. Tickets are Int32 and every step is `| 0`:
 * nextTicket runs 2^31 − 1 → −2^31 and on. Nothing minds: the slot index `ticket & slotMask` continues
 * across the wrap because 2^32 is a multiple of the slot count; the queue length
 * `(nextTicket − nowServing) | 0` is exact because it is at most the slot count (≤ 2^24, far below 2^31).
 * The tag `(ticket << 2) | state` keeps only the ticket's low 30 bits, so tickets t and t + 2^30 have the
 * same tag, and — 2^30 being a multiple of the slot count — the same slot. The queue itself never holds
 * both: live and cancelled tickets fit in the slots (#enqueue refuses beyond that), so slot t mod size is
 * reused by ticket t + size only after t has left the queue. The danger is a waiter that has left without
 * yet looking: ticket t is admitted while its thread sleeps (a waiter that cancels has looked), and before
 * that thread reads its slot again, tickets keep being issued. The slot shows t + size, t + 2·size, … —
 * all different from "t: WAITING" — until ticket t + 2^30 is issued; if that happened before t's thread
 * looked, t would read "t: WAITING" again, keep waiting on a permit it already holds, and could even
 * "cancel" ticket t + 2^30. So the bound: at most 2^30 − 1 tickets (1,073,741,823) may be issued after
 * ticket t before t's waiter next reads its slot. The gap it must bridge is one wake-up: microseconds, or
 * a few milliseconds on a busy machine. Tickets are issued only to arrivals that must wait; even at a
 * million a second (more than four times this package's contended benchmark, bench-sync.ts) 2^30 takes 18
 * minutes, and at a proxy's 10,000 queued connections a second 30 hours — while every other thread keeps
 * running and one admitted thread does not get scheduled at all. The create option `firstTicket` starts
 * the counter anywhere, so that tests (semaphore-wrap.test.ts) run the queue across both wraps.
 *
 * Invariants, kept under the mutex: 0 ≤ free ≤ permits; held = permits − free; free > 0 only when no
 * live ticket waits (so newcomers never pass the queue); releasing with nothing held throws.
 */
import { Mutex } from './mutex.ts';
import { abortError, deadlineIn, remainingMs, waitAsyncUntil } from './wait.ts';

// Header word indexes (after the mutex's two words).
const PERMITS = 2;
const FREE = 3;
const NEXT_TICKET = 4;
const NOW_SERVING = 5;
const WAITING = 6;
const MAX_WAITING = 7;
const ADMITTED_TOTAL = 8;
const SLOT_MASK = 9;
const HEADER_WORDS = 10;

// Slot states, in the low two bits of a slot word; the ticket number fills the rest.
const WAITING_STATE = 1;
const ADMITTED = 2;
const CANCELLED = 3;

/** The slot word for `ticket` in `state`. */
function tag(ticket: number, state: number): number {
  return ((ticket << 2) | state) | 0;
}

/** What acquire answers: got a permit, gave up at the timeout, or found the waiting queue full. */
export type AcquireResult = 'acquired' | 'timed-out' | 'queue-full';

export interface SemaphoreOptions {
  /** How many holders at once (K). */
  permits: number;
  /** How many may wait in the queue at once; more are refused with 'queue-full'. Default 1024. */
  maxWaiting?: number;
  /**
   * Where the ticket counter starts: any Int32, default 0. For tests and demos of the wrap-around — start
   * at 2 ** 31 - 10 and the counter wraps to −2^31 (and the 30-bit slot tag to 0) after ten tickets.
   */
  firstTicket?: number;
}

export interface AcquireOptions {
  /** Give up after this many milliseconds of waiting (default: wait forever). */
  timeoutMs?: number;
  /** Give up when this signal aborts: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Returned by enqueue(): admitted at once, refused, or a ticket to wait with. */
type Entry = { kind: 'admitted' } | { kind: 'queue-full' } | { kind: 'ticket'; slot: number; ticket: number };

export class Semaphore {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  readonly #mutex: Mutex;

  /** Create a semaphore in a new SharedArrayBuffer. */
  static create({ permits, maxWaiting = 1024, firstTicket = 0 }: SemaphoreOptions): Semaphore {
    if (!Number.isInteger(permits) || permits < 1 || permits > 0x3fffffff) {
      throw new RangeError(`Semaphore permits must be an integer ≥ 1, got ${permits}`);
    }
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0 || maxWaiting > 1 << 24) {
      throw new RangeError(`Semaphore maxWaiting must be an integer from 0 to ${1 << 24}, got ${maxWaiting}`);
    }
    if (!Number.isInteger(firstTicket) || firstTicket !== (firstTicket | 0)) {
      throw new RangeError(`Semaphore firstTicket must be an Int32 (from -2^31 to 2^31 - 1), got ${firstTicket}`);
    }
    // Slots are indexed by ticket modulo a power of two, so Int32 ticket wrap-around maps consistently.
    let slots = 1;
    while (slots < maxWaiting) slots *= 2;
    const buffer = new SharedArrayBuffer((HEADER_WORDS + slots) * Int32Array.BYTES_PER_ELEMENT);
    const words = new Int32Array(buffer);
    words[PERMITS] = permits;
    words[FREE] = permits;
    words[MAX_WAITING] = maxWaiting;
    words[SLOT_MASK] = slots - 1;
    words[NEXT_TICKET] = firstTicket; // the queue is empty: nowServing = nextTicket
    words[NOW_SERVING] = firstTicket;
    return new Semaphore(buffer);
  }

  /** Attach to a semaphore created in another thread, from its buffer. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer);
    this.#mutex = new Mutex(buffer, 0);
  }

  /** Take a permit if one is free and nobody is queued before us; never waits. */
  tryAcquire(): boolean {
    this.#mutex.lock();
    try {
      if (!this.#queueEmpty() || this.#words[FREE]! === 0) return false;
      this.#takeFreePermit();
      return true;
    } finally {
      this.#mutex.unlock();
    }
  }

  /** Take a permit, blocking the calling thread with Atomics.wait. Only for threads that may block. */
  acquire(timeoutMs: number = Infinity): AcquireResult {
    const entry = this.#enqueue();
    if (entry.kind !== 'ticket') return entry.kind === 'admitted' ? 'acquired' : 'queue-full';
    const deadline = deadlineIn(timeoutMs);
    const waiting = tag(entry.ticket, WAITING_STATE);
    for (;;) {
      if (Atomics.load(this.#words, entry.slot) !== waiting) return 'acquired';
      const left = remainingMs(deadline);
      if (left === 0) {
        if (this.#cancel(entry)) return 'timed-out';
        continue; // admission won the race: the permit is ours
      }
      // Sleeps only while our slot still says "t: WAITING"; admission changes it and notifies the slot.
      Atomics.wait(this.#words, entry.slot, waiting, left);
    }
  }

  /**
   * Take a permit without blocking the event loop (Atomics.waitAsync). Resolves 'acquired', 'timed-out'
   * or 'queue-full'; rejects with the signal's reason when `signal` aborts first (no permit is then held).
   */
  async acquireAsync({ timeoutMs = Infinity, signal }: AcquireOptions = {}): Promise<AcquireResult> {
    if (signal?.aborted) throw abortError(signal);
    const entry = this.#enqueue();
    if (entry.kind !== 'ticket') return entry.kind === 'admitted' ? 'acquired' : 'queue-full';
    const deadline = deadlineIn(timeoutMs);

    const waiting = tag(entry.ticket, WAITING_STATE);
    for (;;) {
      if (Atomics.load(this.#words, entry.slot) !== waiting) {
        if (!signal?.aborted) return 'acquired';
        this.release(); // admitted in the same instant as the abort: give the permit straight back
        throw abortError(signal);
      }
      if (remainingMs(deadline) === 0 || signal?.aborted) {
        if (this.#cancel(entry)) {
          if (signal?.aborted) throw abortError(signal);
          return 'timed-out';
        }
        continue; // admission won the race: the permit is ours
      }
      // Sleeps while our slot still says "t: WAITING", holding a timer until the deadline so that the
      // thread lives to see it. Whatever woke us, the loop re-reads the slot, the clock and the signal.
      await waitAsyncUntil(this.#words, entry.slot, waiting, { deadline, signal });
    }
  }

  /** Give a permit back and admit the next waiter. Releasing more than was acquired throws. */
  release(): void {
    this.#mutex.lock();
    try {
      const words = this.#words;
      if (words[FREE]! >= words[PERMITS]!) {
        throw new Error(`Semaphore.release(): no permit is held (all ${words[PERMITS]} are free)`);
      }
      Atomics.add(words, FREE, 1); // changes only under the mutex; atomic for the getters' sake
      this.#admitFromHead();
    } finally {
      this.#mutex.unlock();
    }
  }

  /** Total permits (K). */
  get permits(): number {
    return Atomics.load(this.#words, PERMITS);
  }
  /** Permits nobody holds right now. */
  get free(): number {
    return Atomics.load(this.#words, FREE);
  }
  /** Permits held right now. */
  get held(): number {
    return this.permits - this.free;
  }
  /** Live waiters in the queue (cancelled tickets excluded). */
  get waiting(): number {
    return Atomics.load(this.#words, WAITING);
  }
  /** The most that may wait at once. */
  get maxWaiting(): number {
    return Atomics.load(this.#words, MAX_WAITING);
  }
  /** How often a thread found the semaphore's internal mutex taken. */
  get contention(): number {
    return this.#mutex.contention;
  }
  /** How many acquisitions succeeded since creation. */
  get admittedTotal(): number {
    return Atomics.load(this.#words, ADMITTED_TOTAL);
  }
  /** The ticket numbers at the head and tail of the queue: [nowServing, nextTicket). */
  get tickets(): { nowServing: number; nextTicket: number } {
    return { nowServing: Atomics.load(this.#words, NOW_SERVING), nextTicket: Atomics.load(this.#words, NEXT_TICKET) };
  }

  // ── under the mutex ────────────────────────────────────────────────────────────────────────────

  #queueEmpty(): boolean {
    return this.#words[NOW_SERVING] === this.#words[NEXT_TICKET];
  }

  #takeFreePermit(): void {
    Atomics.sub(this.#words, FREE, 1);
    Atomics.add(this.#words, ADMITTED_TOTAL, 1);
  }

  /** Admit at once when a permit is free (the queue is then empty), else take a ticket. */
  #enqueue(): Entry {
    const words = this.#words;
    this.#mutex.lock();
    try {
      if (words[FREE]! > 0 && this.#queueEmpty()) {
        this.#takeFreePermit();
        return { kind: 'admitted' };
      }
      const ticket = words[NEXT_TICKET]!;
      const queued = (ticket - words[NOW_SERVING]!) | 0; // live and cancelled tickets not yet passed
      // `waiting` may be one high for a moment (a cancel between its CAS and its decrement): early, not late.
      if (Atomics.load(words, WAITING) >= words[MAX_WAITING]! || queued > words[SLOT_MASK]!) return { kind: 'queue-full' };
      const slot = HEADER_WORDS + (ticket & words[SLOT_MASK]!);
      // The slot last held ticket − size, which has left the queue (queued ≤ slotMask above), and whose
      // waiter is assumed to have looked since (the 2^30-ticket bound at the top of the file).
      Atomics.store(words, slot, tag(ticket, WAITING_STATE));
      Atomics.store(words, NEXT_TICKET, (ticket + 1) | 0); // Int32 wrap-around is fine: see the top of the file
      Atomics.add(words, WAITING, 1);
      return { kind: 'ticket', slot, ticket };
    } finally {
      this.#mutex.unlock();
    }
  }

  /** While permits are free and tickets wait: admit the head ticket, skipping cancelled ones. */
  #admitFromHead(): void {
    const words = this.#words;
    while (!this.#queueEmpty()) {
      const head = words[NOW_SERVING]!;
      const slot = HEADER_WORDS + (head & words[SLOT_MASK]!);
      if (Atomics.load(words, slot) === tag(head, CANCELLED)) {
        Atomics.store(words, NOW_SERVING, (head + 1) | 0);
        Atomics.notify(words, slot); // wake a leftover async wait of the waiter that left
        continue;
      }
      if (words[FREE]! === 0) return;
      // The waiter may be cancelling right now; exactly one CAS wins. If it cancelled, loop to skip it.
      const waiting = tag(head, WAITING_STATE);
      const seen = Atomics.compareExchange(words, slot, waiting, tag(head, ADMITTED));
      if (seen !== waiting) {
        // Only the waiter writes this slot outside the mutex, and only WAITING → CANCELLED: anything else
        // means the buffer was written by someone else. Throw rather than spin here holding the mutex.
        if (seen !== tag(head, CANCELLED)) throw new Error(`Semaphore: slot of ticket ${head} holds ${seen}, neither waiting nor cancelled`);
        continue;
      }
      Atomics.store(words, NOW_SERVING, (head + 1) | 0);
      Atomics.sub(words, WAITING, 1);
      this.#takeFreePermit();
      Atomics.notify(words, slot); // wake exactly the sleeper(s) on this ticket's slot
    }
  }

  // ── lock-free, on the waiter's own slot ─────────────────────────────────────────────────────────

  /** Leave the queue. False when admission won the race (then the caller holds a permit). */
  #cancel({ slot, ticket }: { slot: number; ticket: number }): boolean {
    const waiting = tag(ticket, WAITING_STATE);
    if (Atomics.compareExchange(this.#words, slot, waiting, tag(ticket, CANCELLED)) !== waiting) return false;
    Atomics.sub(this.#words, WAITING, 1);
    // Our ticket stays in the queue, marked, until it reaches the head and is skipped. Skip now if we
    // are at the head, so that the queue's length and ring space are given back at once.
    this.#mutex.lock();
    try {
      this.#admitFromHead();
    } finally {
      this.#mutex.unlock();
    }
    return true;
  }
}
