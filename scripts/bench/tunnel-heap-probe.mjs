/* Plain JavaScript, not TypeScript (as heap-probe.mjs: a .ts preload would load Node.js's type stripper
 * into every isolate). Loaded into every thread of a proxyd under measurement by tunnel-heap.ts
 * (`--import`, which worker threads inherit). When the file $PROXYD_TUNNEL_PROBE + ".ask" is touched,
 * each thread runs two full collections and writes its live heap to $PROXYD_TUNNEL_PROBE.<threadId>.json.
 * Measurement only: proxyd itself knows nothing of it.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread, threadId } from 'node:worker_threads';

const base = process.env.PROXYD_TUNNEL_PROBE;
if (base) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc'); // this isolate's gc(), without --expose-gc on the command line
  let answered = 0;
  setInterval(() => {
    const ask = `${base}.ask`;
    if (!existsSync(ask)) return;
    const asked = statSync(ask).mtimeMs;
    if (asked <= answered) return;
    answered = asked;
    gc();
    gc();
    const heap = v8.getHeapStatistics();
    writeFileSync(`${base}.${threadId}.json`, JSON.stringify({ threadId, primary: isMainThread, used: heap.used_heap_size, external: heap.external_memory }));
  }, 100).unref();
}
