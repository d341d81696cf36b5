// Three roles around one mutex: `misuse` unlocks it without holding it, `watch` spins reading its word
// and records every value it sees, `lock` takes and gives it back. Each stops after `rounds` (or the
// watcher when the others raise `stop`) and, in every case, at `deadlineMs` from its start.
import { parentPort, workerData } from 'node:worker_threads';
import { Mutex } from '@proxyd/sync/mutex';
import { StartGate } from './run.ts';

const { role, mutexBuffer, gateBuffer, stopBuffer, rounds, deadlineMs } = workerData as {
  role: 'misuse' | 'watch' | 'lock';
  mutexBuffer: SharedArrayBuffer;
  gateBuffer: SharedArrayBuffer;
  stopBuffer: SharedArrayBuffer; // [workers still running that the watcher waits for]
  rounds: number;
  deadlineMs: number;
};
const mutex = new Mutex(mutexBuffer);
const word = new Int32Array(mutexBuffer, 0, 1); // the mutex's state word, read behind its back
const stop = new Int32Array(stopBuffer);

new StartGate(gateBuffer).arriveAndWait();
const deadline = performance.now() + deadlineMs;

if (role === 'misuse') {
  let threw = 0;
  let returned = 0; // unlock() that did not throw: it found the mutex held by the `lock` thread
  for (let i = 0; i < rounds && performance.now() < deadline; i++) {
    try {
      mutex.unlock();
      returned++;
    } catch {
      threw++;
    }
  }
  Atomics.sub(stop, 0, 1);
  parentPort!.postMessage({ threw, returned });
} else if (role === 'watch') {
  const seen: Record<string, number> = {};
  let reads = 0;
  while (Atomics.load(stop, 0) > 0 && performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) {
      const v = Atomics.load(word, 0);
      seen[v] = (seen[v] ?? 0) + 1;
    }
    reads += 1000;
  }
  parentPort!.postMessage({ seen, reads });
} else {
  let locked = 0;
  let lostToMisuse = 0; // our unlock() threw: the misuse thread had already released our lock
  for (let i = 0; i < rounds && performance.now() < deadline; i++) {
    mutex.lock(); // with the old Atomics.sub unlock this could sleep forever on a free mutex
    locked++;
    try {
      mutex.unlock();
    } catch {
      lostToMisuse++;
    }
  }
  Atomics.sub(stop, 0, 1);
  parentPort!.postMessage({ locked, lostToMisuse });
}
