/* Plain JavaScript, not TypeScript: a .ts preload would load Node.js's type stripper into every
 * isolate before proxyd enables its compile cache, and distort what is measured.
 *
 * Loaded into every thread of a proxyd under measurement (`node --import heap-probe.mjs proxyd.js …`:
 * worker threads inherit the primary's execArgv, so each isolate runs this once). When the file named
 * by $PROXYD_HEAP_PROBE + ".ask" appears, each thread writes its V8 heap figures to
 * $PROXYD_HEAP_PROBE.<threadId>.json (memory-breakdown.ts reads them). Measurement only: proxyd itself
 * knows nothing of it.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { threadId, isMainThread, workerData } from 'node:worker_threads';

const base = process.env.PROXYD_HEAP_PROBE;
if (base) {
  // Time in garbage collection (pauses of this thread), minor and major, since the thread started.
  const gc = { minorCount: 0, minorMs: 0, majorCount: 0, majorMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const minor = e.detail?.kind === 1; // NODE_PERFORMANCE_GC_MINOR
      gc[minor ? 'minorCount' : 'majorCount']++;
      gc[minor ? 'minorMs' : 'majorMs'] += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  let answered = 0;
  const timer = setInterval(() => {
    const ask = `${base}.ask`;
    if (!existsSync(ask)) return;
    const asked = statSync(ask).mtimeMs;
    if (asked <= answered) return;
    answered = asked;
    const name = isMainThread ? 'primary' : workerData && typeof workerData === 'object' && 'ring' in workerData && 'logFile' in workerData ? 'logger' : 'worker';
    writeFileSync(
      `${base}.${threadId}.json`,
      JSON.stringify({ threadId, name, asked, heap: v8.getHeapStatistics(), spaces: v8.getHeapSpaceStatistics(), gc, usage: isMainThread ? process.memoryUsage() : undefined }),
    );
  }, 200);
  timer.unref();
}
