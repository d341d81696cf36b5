// Give a thread's heap back once it has settled: one garbage collection soon after the thread starts, and
// one each time it goes idle with a heap grown since the last (issue 20).
//
// Loading and compiling its modules grows a thread's young generation (a worker's to ~7 MiB of new space)
// and leaves garbage in its old one; load grows both further (a busy worker's new space to 16 MiB, its
// old space to ~20 MiB of which half is dead). V8 keeps those sizes until it next needs to collect, and
// its own memory reducer waits 8 s and more: a fresh proxyd held them all, and an idle one after load
// held what the load had grown. A collection with the "last-resort" flavour (what V8's
// LowMemoryNotification does: full collections that also shrink the new space and hand freed pages back)
// returns them: memory-breakdown.ts, V8 heaps of a fresh proxyd 77 → 51 MiB. It pauses the thread
// ~20-50 ms, so it runs only when the thread is idle: after start, and after a second in which the
// thread's event loop was busy less than 2% of the time (performance.eventLoopUtilization), no more than
// once every 10 s, and only when the heap has grown by 4 MiB since the last one. Under load it never runs.
//
// V8 offers that collection to JavaScript only through `gc()`, which exists when --expose-gc is set:
// bin/proxyd.js sets it for the process before any thread starts (V8's flags are the process's, and a
// flag set then is in every thread's compile-cache key from the first run on). V8 defines `gc` on the
// global object of each context made after that: a worker thread's own, not the primary's, which existed
// before; the primary takes it from a new context. Without the flag (proxyd started in a test process,
// say) this does nothing.
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** Idle: the event loop busy less than this share of the last check's second. */
const IDLE_UTILIZATION = 0.02;
const CHECK_MS = 1_000;
/** At most one idle collection this often. */
const MIN_GAP_MS = 10_000;
/** Only when the heap has grown this much since the last collection. */
const GROWTH_BYTES = 4 * 1024 * 1024;

let started = false;

/** Collect this thread's garbage `startDelayMs` from now, then whenever it is idle with a grown heap. Once per thread. */
export function settleHeapWhenIdle(startDelayMs = 1_500): void {
  if (started) return;
  const gc = (globalThis as { gc?: GcFunction }).gc ?? (vm.runInNewContext('typeof gc === "function" ? gc : undefined') as GcFunction | undefined);
  if (typeof gc !== 'function') return;
  started = true;
  let settledBytes = Infinity;
  let lastAt = 0;
  const collect = () => {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    settledBytes = v8.getHeapStatistics().total_physical_size;
    lastAt = performance.now();
  };
  setTimeout(() => {
    collect();
    let elu = performance.eventLoopUtilization();
    setInterval(() => {
      const now = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(now, elu).utilization;
      elu = now;
      if (busy >= IDLE_UTILIZATION || performance.now() - lastAt < MIN_GAP_MS) return;
      if (v8.getHeapStatistics().total_physical_size - settledBytes < GROWTH_BYTES) return;
      collect();
      elu = performance.eventLoopUtilization(); // the collection's own pause is not load
    }, CHECK_MS).unref();
  }, startDelayMs).unref();
}
