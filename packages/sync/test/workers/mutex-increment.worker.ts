// 100,000 non-atomic read-modify-writes of a shared counter, with or without the mutex around each.
import { parentPort, workerData } from 'node:worker_threads';
import { Mutex } from '@proxyd/sync/mutex';
import { StartGate } from './run.ts';

const { mutexBuffer, counterBuffer, gateBuffer, iterations, guarded } = workerData as {
  mutexBuffer: SharedArrayBuffer;
  counterBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  iterations: number;
  guarded: boolean;
};
const mutex = new Mutex(mutexBuffer);
const counter = new Int32Array(counterBuffer);
let scratch = 0;

function unsafeIncrement(): void {
  const before = counter[0]!; // read …
  for (let i = 0; i < 8; i++) scratch = (scratch * 31 + i) | 0; // … a little work in between …
  counter[0] = before + 1; // … write: another thread's write in between is lost
}

new StartGate(gateBuffer).arriveAndWait();
for (let i = 0; i < iterations; i++) {
  if (guarded) {
    mutex.lock();
    unsafeIncrement();
    mutex.unlock();
  } else {
    unsafeIncrement();
  }
}
parentPort!.postMessage({ scratch });
