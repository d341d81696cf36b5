// Find (and so claim) the same list of keys as the other threads, at once; report each key's slot.
import { parentPort, workerData } from 'node:worker_threads';
import { KeyTable } from '@proxyd/sync/key-table';
import { StartGate } from './run.ts';

const { tableBuffer, gateBuffer, keys } = workerData as { tableBuffer: SharedArrayBuffer; gateBuffer: SharedArrayBuffer; keys: string[] };
const table = new KeyTable(tableBuffer);
new StartGate(gateBuffer).arriveAndWait();
const slots = keys.map((key) => table.find(key, KeyTable.hash(key), 1n));
parentPort!.postMessage({ slots });
