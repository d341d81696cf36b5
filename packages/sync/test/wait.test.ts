import t from 'tap';
import { Worker } from 'node:worker_threads';
import { deadlineIn, waitAsyncUntil } from '@proxyd/sync/wait';

const ALONE = new URL('./workers/wait-alone.worker.ts', import.meta.url);

/** Run wait-alone.worker.ts; resolve with its message, or undefined if it exited without one. */
function alone(how: 'helper' | 'bare', timeoutMs: number): Promise<{ value: string; waitedMs: number } | undefined> {
  return new Promise((resolve, reject) => {
    const w = new Worker(ALONE, { workerData: { how, timeoutMs } });
    let got: { value: string; waitedMs: number } | undefined;
    const kill = setTimeout(() => void w.terminate(), 10_000);
    w.on('message', (m: { value: string; waitedMs: number }) => (got = m));
    w.once('error', reject);
    w.once('exit', () => {
      clearTimeout(kill);
      resolve(got);
    });
  });
}

t.test('a bare Atomics.waitAsync does not keep its thread alive: the thread exits before the timeout', async (t) => {
  // The fact the helper exists for (DESIGN.md). If Node ever made a pending waitAsync a handle, this
  // fails, and the helper's timer could go.
  t.equal(await alone('bare', 200), undefined, 'the worker exited with its wait still pending');
});

t.test('waitAsyncUntil with a deadline keeps its thread alive until the deadline and answers timed-out', async (t) => {
  const report = await alone('helper', 200);
  t.ok(report, 'the worker lived to report');
  t.equal(report?.value, 'timed-out');
  t.ok(report!.waitedMs >= 200, `not before the deadline (${report!.waitedMs.toFixed(1)} ms)`);
});

t.test('what it answers: not-equal at once, ok on a notify, timed-out never early, aborted', async (t) => {
  const word = new Int32Array(new SharedArrayBuffer(4));
  t.equal(await waitAsyncUntil(word, 0, 1), 'not-equal', 'the word already differs: no wait');

  const woken = waitAsyncUntil(word, 0, 0, { deadline: deadlineIn(5_000) });
  setTimeout(() => {
    Atomics.store(word, 0, 1);
    Atomics.notify(word, 0);
  }, 20);
  t.equal(await woken, 'ok', 'a notify wakes it');
  Atomics.store(word, 0, 0);

  for (let i = 0; i < 50; i++) {
    const deadline = deadlineIn(1 + (i % 4));
    const why = await waitAsyncUntil(word, 0, 0, { deadline });
    const now = performance.now();
    if (why !== 'timed-out' || now < deadline) return t.fail(`wait ${i}: ${why} at ${(now - deadline).toFixed(3)} ms from the deadline`);
  }
  t.pass('50 short waits each answered timed-out, none before its deadline');

  const ac = new AbortController();
  const aborted = waitAsyncUntil(word, 0, 0, { deadline: deadlineIn(5_000), signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  t.equal(await aborted, 'aborted', 'an abort during the wait');
  t.equal(await waitAsyncUntil(word, 0, 0, { signal: AbortSignal.abort() }), 'aborted', 'an already-aborted signal');
  t.equal(await waitAsyncUntil(word, 0, 0, { deadline: performance.now() - 1 }), 'timed-out', 'a deadline already past');
});
