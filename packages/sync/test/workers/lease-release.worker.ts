// Two of these race to give back the same held permits, lease by lease. `naive` guards each release with
// a check-then-act on a plain flag word; `cas` calls PermitLeases.release(). Each counts, per lease, how
// often it (believed it) gave the permit back, in a shared tally that the test inspects.
//
// The threads go through the leases in batches and meet at a barrier before each batch, so that they stay
// side by side: a thread that started a millisecond late would otherwise find every lease already
// released, and there would be no race to see. The barrier sleeps (Atomics.wait) while the other thread
// is not there yet, so that on a loaded machine it gives the other thread the CPU, then both spin
// briefly on a second word to start the batch together after the wake-up.
import { parentPort, workerData } from 'node:worker_threads';
import { Semaphore } from '@proxyd/sync/semaphore';
import { PermitLeases } from '@proxyd/sync/permit-leases';
import { StartGate } from './run.ts';

const { mode, semBuffer, leasesBuffer, tallyBuffer, barrierBuffer, gateBuffer, count, batch, threads } = workerData as {
  mode: 'naive' | 'cas';
  semBuffer: SharedArrayBuffer;
  leasesBuffer: SharedArrayBuffer; // naive: Int32 flags (1 HELD, 2 RELEASED); cas: a PermitLeases buffer
  tallyBuffer: SharedArrayBuffer; // Int32 per lease: releases that happened for it
  barrierBuffer: SharedArrayBuffer; // Int32 [arrivals, arrivals after the wake-up]
  gateBuffer: SharedArrayBuffer;
  count: number;
  batch: number;
  threads: number;
};
const HELD = 1;
const RELEASED = 2;
const sem = new Semaphore(semBuffer);
const flags = new Int32Array(leasesBuffer);
const leases = new PermitLeases(leasesBuffer);
const tally = new Int32Array(tallyBuffer);
const barrier = new Int32Array(barrierBuffer);
let scratch = 0;

/** The guard PermitLeases replaces: read the flag, then write it. Both threads can read HELD. */
function naiveRelease(lease: number): boolean {
  if (flags[lease] === HELD) { // check …
    for (let i = 0; i < 16; i++) scratch = (scratch * 31 + i) | 0; // … a little work in between …
    flags[lease] = RELEASED; // … then act: the other thread may have passed the check meanwhile
    sem.release();
    return true;
  }
  return false;
}

new StartGate(gateBuffer).arriveAndWait();
const deadline = performance.now() + 10_000; // past it, nobody waits at the barrier any more

/** Wait until `threads × (round + 1)` have arrived at word `at`; sleep between looks if `sleep`. */
function meet(at: number, round: number, sleep: boolean): void {
  const target = threads * (round + 1);
  if (Atomics.add(barrier, at, 1) + 1 === target) return void Atomics.notify(barrier, at); // last one in
  for (let spins = 0, seen = Atomics.load(barrier, at); seen < target; seen = Atomics.load(barrier, at), spins++) {
    if (spins % 1024 !== 1023) continue;
    if (performance.now() > deadline) return;
    if (sleep) Atomics.wait(barrier, at, seen, 1);
  }
}

let released = 0;
for (let round = 0, first = 0; first < count; round++, first += batch) {
  meet(0, round, true);
  meet(1, round, false);
  for (let lease = first; lease < Math.min(first + batch, count); lease++) {
    const mine = mode === 'naive' ? naiveRelease(lease) : leases.release(lease, sem);
    if (mine) {
      released++;
      Atomics.add(tally, lease, 1);
    }
  }
}
parentPort!.postMessage({ released, scratch });
