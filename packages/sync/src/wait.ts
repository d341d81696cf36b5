/**
 * Waiting on a word without blocking the thread: the one helper that Mutex.lockAsync(),
 * Semaphore.acquireAsync() and LogRing.waitForRecords() share, and the small pieces around it.
 *
 * Atomics.waitAsync(i32, index, expected, timeout) compares the word with `expected` and, atomically with
 * that compare, either answers at once — { async: false, value: 'not-equal' } when the word differs — or
 * enqueues a waiter and answers { async: true, value: promise }. The promise settles with 'ok' when an
 * Atomics.notify on the word picks this waiter, or with 'timed-out' when `timeout` ms pass. The compare
 * and the enqueue are one step, which is what makes "check, then sleep" free of lost wake-ups: a store
 * and notify that come after the compare find the waiter queued.
 *
 * Two things the bare call does not do, and waitAsyncUntil() does:
 *
 *   1. Keep the thread alive until the deadline. A pending waitAsync is not an event-loop handle (it is
 *      held by V8, not by libuv): a thread with nothing else on its loop exits under it, timeout or not
 *      (see DESIGN.md). So a wait with a deadline also holds a ref'd setTimeout for the same moment, races
 *      the two, and clears the timer when the wait wins. A wait with no deadline holds no timer: it would
 *      have to keep the thread alive forever, and that is the caller's decision (a server, a port, a timer
 *      of its own).
 *   2. Answer 'timed-out' only once the deadline has really passed. A Node timer can fire a little before
 *      performance.now() reaches the moment it was set for (libuv's loop clock is coarser and cached), and
 *      so can the wait's own timeout; either way, if time is left, the helper waits again with a fresh
 *      timer instead of reporting a timeout early.
 *
 * A waitAsync cannot be cancelled. When the timer or the abort signal wins the race, the wait stays
 * queued on the word until its own timeout (set to the same deadline, so about now) or until a notify
 * picks it. Such a leftover waiter can absorb an Atomics.notify(word, 1) meant for a live one; the
 * primitives tolerate that: the semaphore notifies every waiter on a slot, the mutex's async waits have no
 * deadline (no leftovers), and the ring's consumer waits with a timeout (a late wake-up, never a lost one).
 */

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** The longest delay setTimeout accepts; a longer one is replaced by 1 ms, with a warning. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why waitAsyncUntil() stopped waiting. */
export type AsyncWaitResult = WaitResult | 'aborted';

export interface AsyncWaitOptions {
  /** performance.now() value after which to stop waiting (default Infinity: no deadline, no timer). */
  deadline?: number;
  /** Stop waiting when this signal aborts. */
  signal?: AbortSignal;
}

/**
 * Wait, without blocking the thread, while `words[index]` is `expected`: until a notify, the deadline, or
 * the signal. Until a deadline it keeps the thread alive (a ref'd timer); with no deadline it does not.
 *
 * Resolves with why it stopped — a reason, not a verdict on the word, which the caller re-reads:
 *   'not-equal'  the word already differed from `expected` when the wait began: nothing was awaited;
 *   'ok'         an Atomics.notify on the word woke this waiter (the word may have changed again since);
 *   'timed-out'  performance.now() reached `deadline` (never earlier);
 *   'aborted'    `signal` aborted, before or during the wait.
 *
 * The compare with `expected` happens synchronously inside this call, before it first awaits, so a caller
 * may rely on the ordering "my stores, then the wait's compare" (the log ring's `asleep` handshake does).
 */
export async function waitAsyncUntil(
  words: Int32Array,
  index: number,
  expected: number,
  { deadline = Infinity, signal }: AsyncWaitOptions = {},
): Promise<AsyncWaitResult> {
  if (signal?.aborted) return 'aborted';
  let onAbort = (): void => {};
  const aborted = new Promise<'aborted'>((resolve) => (onAbort = () => resolve('aborted')));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      let left = remainingMs(deadline);
      if (left === 0) return 'timed-out';
      // Compare and enqueue in one step; the timeout is the same deadline, so a leftover wait ends too.
      const wait = Atomics.waitAsync(words, index, expected, left);
      if (!wait.async) return wait.value; // 'not-equal' (left > 0, so it cannot be 'timed-out')
      if (left === Infinity) return await Promise.race([wait.value, aborted]); // no deadline: no timer
      for (;;) {
        // The timer is the handle that keeps the thread alive while the wait is pending.
        // (setTimeout takes at most 2^31 − 1 ms; a longer wait is re-armed below when that timer rings.)
        let timer: NodeJS.Timeout | undefined;
        const ms = Math.min(Math.ceil(left) + 1, MAX_TIMER_MS);
        const rang = new Promise<'timer'>((resolve) => (timer = setTimeout(resolve, ms, 'timer')));
        const why = await Promise.race([wait.value, aborted, rang]);
        clearTimeout(timer);
        if (why === 'ok' || why === 'aborted') return why;
        left = remainingMs(deadline);
        if (left === 0) return 'timed-out';
        if (why === 'timed-out') break; // the wait's own timeout came early: wait again on the word
        // The timer came early and the wait is still queued: keep racing it, with a fresh timer.
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The performance.now() deadline `timeoutMs` from now (Infinity for no timeout). */
export function deadlineIn(timeoutMs: number): number {
  return timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
}

/** Milliseconds left until `deadline` (a performance.now() value), never negative. */
export function remainingMs(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
}

/** The error an aborted wait rejects with, shaped like the DOM AbortError that fetch and timers use. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('The operation was aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}
