// One garbage collection of this thread's heap soon after it has started, run once per thread (issue 20).
// Loading and compiling its modules grows a thread's young generation (a worker's to ~7 MiB of new space)
// and leaves garbage in its old one; V8 keeps both sizes until load makes it collect, so a fresh proxyd
// held them all. A collection with the "last-resort" flavour (what V8's LowMemoryNotification does:
// several full collections that also shrink the new space and hand freed pages back) returns them:
// memory-breakdown.ts, V8 heaps of a fresh proxyd 77 → 53 MiB. It pauses the thread once, ~20-50 ms,
// before the thread has work in the ordinary case (the timer is a second or two after its start).
//
// V8 offers that collection to JavaScript only through `gc()`, which exists when --expose-gc is set:
// bin/proxyd.js sets it for the process before any thread starts (V8's flags are the process's, and a
// flag set then is in every thread's compile-cache key from the first run on). V8 defines `gc` on the
// global object of each context made after that: a worker thread's own, not the primary's, which existed
// before; the primary takes it from a new context. Without the flag (proxyd started in a test process,
// say) this does nothing.
import vm from 'node:vm';
type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** Run the settling collection in this thread `delayMs` from now (at most once per thread). */
export function settleHeapSoon(delayMs = 1_500): void {
  const gc = (globalThis as { gc?: GcFunction }).gc ?? (vm.runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined);
  if (typeof gc !== 'function') return;
  setTimeout(() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }), delayMs).unref();
}
