// Add to shared counters `iterations` times: +1 to "hits", +bytes to "bytes", and up/down on a gauge.
import { parentPort, workerData } from 'node:worker_threads';
import { Stats } from '@proxyd/sync/stats';
import { StartGate } from './run.ts';
import { NAMES } from './stats-names.ts';

const { statsBuffer, gateBuffer, iterations, bytes } = workerData as {
  statsBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  iterations: number;
  bytes: number;
};
const stats = new Stats(statsBuffer, NAMES);
new StartGate(gateBuffer).arriveAndWait();
for (let i = 0; i < iterations; i++) {
  stats.add('active', 1);
  stats.add('hits');
  stats.add('bytes', bytes);
  stats.add('active', -1);
}
parentPort!.postMessage({ done: true });
