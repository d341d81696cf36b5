// `adds` increments of one sliding-window counter from this thread, the clock walking through windows.
import { parentPort, workerData } from 'node:worker_threads';
import { WindowCounter } from '@proxyd/sync/window-counter';
import { StartGate } from './run.ts';

const { wordsBuffer, gateBuffer, adds, clockBuffer } = workerData as { wordsBuffer: SharedArrayBuffer; gateBuffer: SharedArrayBuffer; adds: number; clockBuffer: SharedArrayBuffer };
const counter = new WindowCounter(new BigInt64Array(wordsBuffer));
const clock = new Int32Array(clockBuffer);
new StartGate(gateBuffer).arriveAndWait();
for (let i = 0; i < adds; i++) counter.add(0, Atomics.load(clock, 0), 1000);
parentPort!.postMessage({ done: true });
