// memory/settle-heap.ts: with --expose-gc (bin/proxyd.js sets it before any thread starts), each thread
// that asks runs one full collection that shrinks its heap, about `delayMs` later; without the flag it
// does nothing and does not throw. Real Node processes and a real worker thread; the collections are
// seen by PerformanceObserver (kind major) in the thread that ran them.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../src/memory/settle-heap.ts', import.meta.url));

/** A thread that counts its major collections for 1.5 s after asking for the settling one in 200 ms. */
const THREAD = `
  const { PerformanceObserver, constants } = require('node:perf_hooks');
  let major = 0;
  new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++; }).observe({ entryTypes: ['gc'] });
  import(${JSON.stringify(MODULE)}).then(({ settleHeapSoon }) => {
    settleHeapSoon(200);
    setTimeout(() => report(major), 1500);
  });
`;

/** Run the thread code in the main thread and in a worker thread; each prints "<where> <majors>". */
function run(flags: string[]): { out: string; status: number | null; stderr: string } {
  const program = `
    const { Worker, isMainThread } = require('node:worker_threads');
    ${flags.includes('--set-flag') ? "require('node:v8').setFlagsFromString('--expose-gc');" : ''}
    const report = (n) => console.log('main ' + n);
    ${THREAD}
    const w = new Worker(${JSON.stringify(`const report = (n) => console.log('worker ' + n);\n${THREAD}`)}, { eval: true });
  `;
  const r = spawnSync(process.execPath, ['-e', program], { encoding: 'utf8', timeout: 20_000 });
  return { out: r.stdout, status: r.status, stderr: r.stderr };
}

t.test('with --expose-gc set at run time (as bin/proxyd.js does): the settling collection runs in each thread (V8 makes it two or more full collections)', async (t) => {
  const r = run(['--set-flag']);
  t.equal(r.status, 0, r.stderr);
  const counts = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split(' ')).map(([w, n]) => [w, Number(n)]));
  t.ok(counts.main! >= 1, `the primary ran it (${counts.main} major collections)`);
  t.ok(counts.worker! >= 1, `the worker thread ran it (${counts.worker} major collections)`);
});

t.test('without the flag: nothing, and no error', async (t) => {
  const r = run([]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.out, /main 0/, 'no major collection in the main thread');
  t.match(r.out, /worker 0/, 'nor in the worker');
});

