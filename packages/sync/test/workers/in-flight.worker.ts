// Clients of one cold "URL" in one thread: each checks a shared cache word and, on a miss, fetches —
// directly (unguarded: the race) or through the InFlightTable (one leader fetches, the others follow).
import { parentPort, workerData } from 'node:worker_threads';
import { InFlightTable } from '@proxyd/sync/in-flight';
import { StartGate } from './run.ts';

const { tableBuffer, sharedBuffer, gateBuffer, clients, guarded, fetchMs, leaderDies, patienceMs, spreadMs = 0, lookMs = 0, lookAgain = true, rounds = 1, roundMs = 0 } = workerData as {
  tableBuffer: SharedArrayBuffer;
  sharedBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  clients: number;
  guarded: boolean;
  fetchMs: number;
  /** The first leader never finishes (as if its thread had died mid-fetch). */
  leaderDies: boolean;
  patienceMs: number;
  /** Clients arrive over this long (ms, at random) instead of all at once. */
  spreadMs?: number;
  /** A look at the cache takes up to this long (ms, at random) before the miss is acted on, as a store query does. */
  lookMs?: number;
  /** A new leader looks at the cache once more before it fetches (in-flight.ts: look, join, look again). */
  lookAgain?: boolean;
  /** Rounds of one cold key each (a key and three words of their own), started every `roundMs`. */
  rounds?: number;
  roundMs?: number;
};
const table = new InFlightTable(tableBuffer);
const all = new Int32Array(sharedBuffer);

/** One round's key and words: [0] the cache (0 empty, else the fetched value); [1] origin fetches; [2] set once a leader "died". */
interface Round {
  key: readonly [number, number];
  shared: Int32Array;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The origin: counts the fetch, takes a while, answers 42. */
async function fetchFromOrigin({ shared }: Round): Promise<number> {
  Atomics.add(shared, 1, 1);
  await sleep(fetchMs);
  return 42;
}

async function lead(o: Round, j: { slot: number; word: number }): Promise<number> {
  const { shared } = o;
  if (leaderDies && Atomics.compareExchange(shared, 2, 0, 1) === 0) {
    Atomics.add(shared, 1, 1); // it did reach the origin…
    await sleep(patienceMs * 5); // …and never finish()es: its client gets nothing
    return 0;
  }
  const value = await fetchFromOrigin(o);
  Atomics.store(shared, 0, value); // publish the result first …
  table.finish(j, true); // … then wake the followers
  return value;
}

async function client(o: Round): Promise<number> {
  const { shared, key } = o;
  if (spreadMs > 0) await sleep(Math.random() * spreadMs);
  const cached = Atomics.load(shared, 0);
  if (cached !== 0) return cached;
  if (lookMs > 0) await sleep(Math.random() * lookMs); // the miss is known; the join comes a moment later
  if (!guarded) {
    const value = await fetchFromOrigin(o); // check-then-act: every client that missed fetches
    Atomics.store(shared, 0, value);
    return value;
  }
  const j = table.join(key[0], key[1]);
  if (j.role === 'done') return Atomics.load(shared, 0);
  if (j.role === 'full') return fetchFromOrigin(o);
  if (j.role === 'leader') {
    const now = lookAgain ? Atomics.load(shared, 0) : 0;
    if (now === 0) return lead(o, j);
    table.finish(j, true); // a leader finished between our look and our join: its result is here
    return now;
  }
  const followed = await table.follow(j, { patienceMs });
  if (followed.role === 'leader') return lead(o, followed);
  return Atomics.load(shared, 0);
}

async function round(r: number): Promise<number> {
  const o: Round = { key: [0x1234, 0x5678 + r], shared: all.subarray(r * 3, r * 3 + 3) };
  return (await Promise.all(Array.from({ length: clients }, () => client(o)))).filter((x) => x === 42).length;
}

new StartGate(gateBuffer).arriveAndWait();
const t0 = Date.now();
const run = async (): Promise<number> => {
  const started: Promise<number>[] = [];
  for (let r = 0; r < rounds; r++) {
    await sleep(Math.max(0, t0 + r * roundMs - Date.now())); // every thread starts round r at the same moment (late: at once)
    started.push(round(r));
  }
  return (await Promise.all(started)).reduce((a, b) => a + b, 0);
};
const values = await Promise.race([run(), new Promise<number>((r) => setTimeout(r, 20_000, -1).unref())]);
parentPort!.postMessage({ answered: values });
