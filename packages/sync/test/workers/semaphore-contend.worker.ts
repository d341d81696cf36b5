// Acquire (blocking), hold briefly while counting holders in a shared gauge, release; `rounds` times.
// With `giveUpEvery` = n, every n-th round gives up at once if it must wait (acquire(0): it takes a ticket
// and cancels it), so cancelled tickets mix with live ones in the queue.
import { parentPort, workerData } from 'node:worker_threads';
import { Semaphore } from '@proxyd/sync/semaphore';
import { StartGate } from './run.ts';

const { semBuffer, gaugeBuffer, gateBuffer, rounds, giveUpEvery = 0 } = workerData as {
  semBuffer: SharedArrayBuffer;
  gaugeBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  rounds: number;
  giveUpEvery?: number;
};
const sem = new Semaphore(semBuffer);
const gauge = new Int32Array(gaugeBuffer); // [holders now, most holders ever seen]
const pause = new Int32Array(new SharedArrayBuffer(4));

new StartGate(gateBuffer).arriveAndWait();
let acquired = 0;
let timedOut = 0;
let queueFull = 0;
for (let i = 0; i < rounds; i++) {
  const givesUp = giveUpEvery > 0 && i % giveUpEvery === 0;
  const result = sem.acquire(givesUp ? 0 : 10_000);
  if (result !== 'acquired') {
    if (givesUp && result === 'timed-out') timedOut++;
    else if (giveUpEvery > 0 && result === 'queue-full') queueFull++; // cancelled tickets can fill the slots
    else throw new Error(`acquire answered ${result}: a permit was lost`);
    continue;
  }
  acquired++;
  const holders = Atomics.add(gauge, 0, 1) + 1;
  for (let max = Atomics.load(gauge, 1); holders > max; max = Atomics.load(gauge, 1)) {
    if (Atomics.compareExchange(gauge, 1, max, holders) === max) break;
  }
  if (i % 16 === 0) Atomics.wait(pause, 0, 0, 1); // now and then hold the permit for a millisecond
  Atomics.sub(gauge, 0, 1);
  sem.release();
}
parentPort!.postMessage({ acquired, timedOut, queueFull });
