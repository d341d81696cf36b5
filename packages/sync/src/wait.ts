/**
 * Small helpers around Atomics.waitAsync, shared by the primitives.
 *
 * Atomics.waitAsync(i32, index, expected, timeout) answers synchronously when the word already differs
 * ({ async: false, value: 'not-equal' }) and otherwise with a promise that settles on Atomics.notify
 * ('ok') or on the timeout ('timed-out'). A pending waitAsync is not an event-loop handle: a thread with
 * nothing else to do exits under it (see DESIGN.md), so callers that must stay alive keep a handle.
 */

export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

/** Wait, without blocking, until the word is no longer `expected` (or a notify, or the timeout). */
export function waitAsyncUntilChanged(
  words: Int32Array,
  index: number,
  expected: number,
  timeoutMs: number = Infinity,
): Promise<WaitResult> | WaitResult {
  return Atomics.waitAsync(words, index, expected, timeoutMs).value;
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
