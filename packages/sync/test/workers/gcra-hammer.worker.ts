// One key hammered by this thread: `attempts` GCRA decisions at a frozen clock, through Gcra.take (a CAS
// loop) or through the same decision written as a plain load / compute / store (no CAS).
import { parentPort, workerData } from 'node:worker_threads';
import { Gcra, type GcraRate } from '@proxyd/sync/gcra';
import { KeyTable } from '@proxyd/sync/key-table';
import { StartGate } from './run.ts';

const { tableBuffer, gateBuffer, attempts, rate, atomic, key } = workerData as {
  tableBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  attempts: number;
  rate: GcraRate;
  atomic: boolean;
  key: string;
};
const table = new KeyTable(tableBuffer);
const gcra = new Gcra(table.big);
const NOW = 1_000_000_000n; // the clock stands still: exactly `burst` requests may pass, whoever makes them
const slot = table.find(key, KeyTable.hash(key), NOW);
const index = slot * table.bigWords;

/** GCRA's decision with a plain read and a plain write: the race the CAS closes. */
function unsafeTake(): boolean {
  const tat = Atomics.load(table.big, index);
  const start = tat > NOW ? tat : NOW;
  if (start - NOW > rate.toleranceNs) return false;
  Atomics.store(table.big, index, start + rate.intervalNs); // another thread's store in between is lost
  return true;
}

new StartGate(gateBuffer).arriveAndWait();
let admitted = 0;
for (let i = 0; i < attempts; i++) {
  if (atomic ? gcra.take(index, NOW, rate) === 0n : unsafeTake()) admitted++;
}
parentPort!.postMessage({ admitted, retries: gcra.retries, slot });
