// Acquire (blocking), hold briefly while counting holders in a shared gauge, release; `rounds` times.
import { parentPort, workerData } from 'node:worker_threads';
import { Semaphore } from '@proxyd/sync/semaphore';
import { StartGate } from './run.ts';

const { semBuffer, gaugeBuffer, gateBuffer, rounds } = workerData as {
  semBuffer: SharedArrayBuffer;
  gaugeBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  rounds: number;
};
const sem = new Semaphore(semBuffer);
const gauge = new Int32Array(gaugeBuffer); // [holders now, most holders ever seen]
const pause = new Int32Array(new SharedArrayBuffer(4));

new StartGate(gateBuffer).arriveAndWait();
let acquired = 0;
for (let i = 0; i < rounds; i++) {
  if (sem.acquire(10_000) !== 'acquired') throw new Error('acquire timed out: a permit was lost');
  acquired++;
  const holders = Atomics.add(gauge, 0, 1) + 1;
  for (let max = Atomics.load(gauge, 1); holders > max; max = Atomics.load(gauge, 1)) {
    if (Atomics.compareExchange(gauge, 1, max, holders) === max) break;
  }
  if (i % 16 === 0) Atomics.wait(pause, 0, 0, 1); // now and then hold the permit for a millisecond
  Atomics.sub(gauge, 0, 1);
  sem.release();
}
parentPort!.postMessage({ acquired });
