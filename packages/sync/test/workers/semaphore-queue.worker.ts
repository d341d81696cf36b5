// A waiter that queues when told to: the test writes a timeout into this worker's mailbox and raises
// `go`; the worker calls the blocking acquire() once with that timeout. Admitted, it appends its id to the
// shared admission log and releases at once (so the next in line is admitted by this release); timed
// out, it counts that. Either way it then counts the command done and waits for the next one.
import { parentPort, workerData } from 'node:worker_threads';
import { Semaphore } from '@proxyd/sync/semaphore';

const { id, semBuffer, mailboxBuffer, logBuffer } = workerData as {
  id: number;
  semBuffer: SharedArrayBuffer;
  mailboxBuffer: SharedArrayBuffer; // Int32 [go: 0 idle · 1 acquire · 2 exit, timeoutMs, done]
  logBuffer: SharedArrayBuffer; // Int32 [cursor, id, id, …]: who was admitted, in order
};
const GO = 0;
const TIMEOUT = 1;
const DONE = 2;
const sem = new Semaphore(semBuffer);
const mailbox = new Int32Array(mailboxBuffer);
const log = new Int32Array(logBuffer);
let acquired = 0;
let timedOut = 0;
const deadline = performance.now() + 60_000; // never outlive a test that went wrong

while (performance.now() < deadline) {
  Atomics.wait(mailbox, GO, 0, 1_000); // sleep until told
  const go = Atomics.load(mailbox, GO);
  if (go === 0) continue;
  if (go === 2) break;
  const timeoutMs = Atomics.load(mailbox, TIMEOUT);
  Atomics.store(mailbox, GO, 0);
  const result = sem.acquire(timeoutMs);
  if (result === 'acquired') {
    acquired++;
    log[1 + Atomics.add(log, 0, 1)] = id;
    sem.release(); // throws if the permit was not really ours: the worker then fails the test
  } else if (result === 'timed-out') {
    timedOut++;
  } else {
    throw new Error(`worker ${id}: acquire answered ${result}`);
  }
  Atomics.add(mailbox, DONE, 1);
  Atomics.notify(mailbox, DONE);
}
parentPort!.postMessage({ acquired, timedOut });
