// A thread whose only pending work is one wait on a word that nobody notifies: `helper` waits with
// waitAsyncUntil() and a deadline, `bare` with Atomics.waitAsync and the same timeout. It posts how the
// wait ended; a thread that exits before its wait settles posts nothing.
import { parentPort, workerData } from 'node:worker_threads';
import { deadlineIn, waitAsyncUntil } from '@proxyd/sync/wait';

const { how, timeoutMs } = workerData as { how: 'helper' | 'bare'; timeoutMs: number };
const word = new Int32Array(new SharedArrayBuffer(4));
const started = performance.now();
const result =
  how === 'helper'
    ? waitAsyncUntil(word, 0, 0, { deadline: deadlineIn(timeoutMs) })
    : (Atomics.waitAsync(word, 0, 0, timeoutMs).value as Promise<string>);
void result.then((value) => parentPort!.postMessage({ value, waitedMs: performance.now() - started }));
// Nothing else here: no timer, no listener on parentPort (postMessage alone does not hold the loop).
