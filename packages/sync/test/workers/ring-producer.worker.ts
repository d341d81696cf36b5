// Write `count` records "producer:seq:payload" of varying length; on a full ring either retry (counting
// each refusal) or give up on that record, as told. With `napEvery`, pause ~50 µs after every that many
// records, so that the consumer runs dry and goes to sleep again and again (the wake-up path).
import { parentPort, workerData } from 'node:worker_threads';
import { LogRing } from '@proxyd/sync/log-ring';
import { StartGate } from './run.ts';
import { makeRecord } from './ring-records.ts';

const { ringBuffer, gateBuffer, producer, count, retry, napEvery = 0 } = workerData as {
  napEvery?: number;
  ringBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  producer: number;
  count: number;
  retry: boolean;
};
const ring = new LogRing(ringBuffer);
const nap = new Int32Array(new SharedArrayBuffer(4));
new StartGate(gateBuffer).arriveAndWait();
let refused = 0;
let accepted = 0;
for (let seq = 0; seq < count; seq++) {
  const record = makeRecord(producer, seq);
  for (;;) {
    if (ring.write(record)) {
      accepted++;
      if (napEvery > 0 && seq % napEvery === napEvery - 1) Atomics.wait(nap, 0, 0, 0.05);
      break;
    }
    refused++;
    if (!retry) break;
    Atomics.wait(nap, 0, 0, 0.05); // let the consumer catch up
  }
}
parentPort!.postMessage({ refused, accepted });
