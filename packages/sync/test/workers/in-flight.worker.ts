// Clients of one cold "URL" in one thread: each checks a shared cache word and, on a miss, fetches —
// directly (unguarded: the race) or through the InFlightTable (one leader fetches, the others follow).
import { parentPort, workerData } from 'node:worker_threads';
import { InFlightTable } from '@proxyd/sync/in-flight';
import { StartGate } from './run.ts';

const { tableBuffer, sharedBuffer, gateBuffer, clients, guarded, fetchMs, leaderDies, patienceMs } = workerData as {
  tableBuffer: SharedArrayBuffer;
  sharedBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  clients: number;
  guarded: boolean;
  fetchMs: number;
  /** The first leader never finishes (as if its thread had died mid-fetch). */
  leaderDies: boolean;
  patienceMs: number;
};
const table = new InFlightTable(tableBuffer);
// [0] the cache: 0 empty, else the fetched value; [1] origin fetches; [2] set once a leader "died"
const shared = new Int32Array(sharedBuffer);
const KEY = [0x1234, 0x5678] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The origin: counts the fetch, takes a while, answers 42. */
async function fetchFromOrigin(): Promise<number> {
  Atomics.add(shared, 1, 1);
  await sleep(fetchMs);
  return 42;
}

async function lead(j: { slot: number; word: number }): Promise<number> {
  if (leaderDies && Atomics.compareExchange(shared, 2, 0, 1) === 0) {
    Atomics.add(shared, 1, 1); // it did reach the origin…
    await sleep(patienceMs * 5); // …and never finish()es: its client gets nothing
    return 0;
  }
  const value = await fetchFromOrigin();
  Atomics.store(shared, 0, value); // publish the result first …
  table.finish(j, true); // … then wake the followers
  return value;
}

async function client(): Promise<number> {
  const cached = Atomics.load(shared, 0);
  if (cached !== 0) return cached;
  if (!guarded) {
    const value = await fetchFromOrigin(); // check-then-act: every client that missed fetches
    Atomics.store(shared, 0, value);
    return value;
  }
  const j = table.join(KEY[0], KEY[1]);
  if (j.role === 'done') return Atomics.load(shared, 0);
  if (j.role === 'full') return fetchFromOrigin();
  if (j.role === 'leader') return lead(j);
  const followed = await table.follow(j, { patienceMs });
  if (followed.role === 'leader') return lead(followed);
  return Atomics.load(shared, 0);
}

new StartGate(gateBuffer).arriveAndWait();
const values = await Promise.race([Promise.all(Array.from({ length: clients }, client)).then((v) => v.filter((x) => x === 42).length), new Promise<number>((r) => setTimeout(r, 20_000, -1).unref())]);
parentPort!.postMessage({ answered: values });
