// One garbage collection of this thread's heap soon after it has started, run once per thread (issue 20).
// Loading and compiling its modules grows a thread's young generation (a worker's to ~7 MiB of new space)
// and leaves garbage in its old one; V8 keeps both sizes until load makes it collect, so a fresh proxyd
// held them all. A collection with the "last-resort" flavour (what V8's LowMemoryNotification does:
// several full collections that also shrink the new space and hand freed pages back) returns them:
// memory-breakdown.ts, V8 heaps of a fresh proxyd 77 → 51 MiB. It pauses the thread once, ~20-50 ms,
// a second or two after its start, before it has work in the ordinary case.
//
// Only after start, not whenever a thread goes idle after load (tried: RSS 3 s after load 260-300 → 170-
// 200 MiB): the collection also throws away what the thread had compiled and grown for its hot path, and
// the next burst paid it again — keep-alive CPU per request 351-369 µs against 203-240 without, when
// rounds of load alternated with idle seconds (variants-cpu.ts, README "Memory: where it goes").
//
// V8 offers that collection to JavaScript only through `gc()`, which exists when --expose-gc is set:
// bin/proxyd.js sets it for the process before any thread starts (V8's flags are the process's, and a
// flag set then is in every thread's compile-cache key from the first run on). V8 defines `gc` on the
// global object of each context made after that: a worker thread's own, not the primary's, which existed
// before; the primary takes it from a new context. Without the flag (proxyd started in a test process,
// say) this does nothing.
import vm from 'node:vm';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let scheduled = false;

/** Run the settling collection in this thread `delayMs` from now (once per thread). */
export function settleHeapSoon(delayMs = 1_500): void {
  if (scheduled) return;
  scheduled = true; // looked for once per thread, found or not
  const gc = (globalThis as { gc?: GcFunction }).gc ?? (vm.runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined);
  if (typeof gc !== 'function') return;
  setTimeout(() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }), delayMs).unref();
}
