// Take one permit (blocking), hold it for `holdMs`, release it from this thread.
import { parentPort, workerData } from 'node:worker_threads';
import { Semaphore } from '@proxyd/sync/semaphore';

const { semBuffer, holdMs } = workerData as { semBuffer: SharedArrayBuffer; holdMs: number };
const sem = new Semaphore(semBuffer);
const result = sem.acquire(holdMs * 20);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, holdMs);
if (result === 'acquired') sem.release();
parentPort!.postMessage({ result });
