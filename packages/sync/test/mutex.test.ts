import t, { type Test } from 'tap';
import { Mutex } from '@proxyd/sync/mutex';
import { runWorkers, StartGate } from './workers/run.ts';

const WORKER = new URL('./workers/mutex-increment.worker.ts', import.meta.url);
const MISUSE = new URL('./workers/mutex-misuse.worker.ts', import.meta.url);
const THREADS = 4;
const ITERATIONS = 100_000;

async function race(t: Test, guarded: boolean): Promise<{ total: number; contention: number }> {
  const mutex = new Mutex();
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const gate = new StartGate();
  const done = runWorkers(WORKER, THREADS, () => ({
    mutexBuffer: mutex.buffer,
    counterBuffer: counter.buffer,
    gateBuffer: gate.buffer,
    iterations: ITERATIONS,
    guarded,
  }));
  await gate.openWhenReady(THREADS);
  await done;
  t.notOk(mutex.locked, 'the mutex is free at the end');
  return { total: counter[0]!, contention: mutex.contention };
}

t.test('without the mutex, concurrent read-modify-writes lose updates (the test can see a race)', async (t) => {
  // A race is likely, not certain, in one run: try a few times and require that at least one lost updates.
  const totals: number[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const { total } = await race(t, false);
    totals.push(total);
    if (total < THREADS * ITERATIONS) break;
  }
  t.ok(totals.some((n) => n < THREADS * ITERATIONS), `some run lost updates: totals ${totals.join(', ')}`);
});

t.test(`with the mutex, ${THREADS} threads × ${ITERATIONS} increments end at exactly ${THREADS * ITERATIONS}`, async (t) => {
  const { total, contention } = await race(t, true);
  t.equal(total, THREADS * ITERATIONS);
  t.comment(`lock() found the mutex taken ${contention} times`);
});

t.test('tryLock, unlock, and unlocking a free mutex', async (t) => {
  const m = new Mutex();
  t.ok(m.tryLock(), 'free mutex: tryLock succeeds');
  t.notOk(m.tryLock(), 'held mutex: tryLock fails');
  m.unlock();
  t.throws(() => m.unlock(), /not locked/, 'unlocking a free mutex throws');
  t.notOk(m.locked, 'and leaves it free');
  t.equal(new Int32Array(m.buffer)[0], 0, 'its word is still 0 (FREE)');
});

type MisuseReport = { threw?: number; returned?: number; seen?: Record<string, number>; reads?: number; locked?: number; lostToMisuse?: number };

/** Run the roles of mutex-misuse.worker.ts at once on one fresh mutex. */
async function misuse(roles: ('misuse' | 'watch' | 'lock')[], rounds: number): Promise<{ mutex: Mutex; reports: MisuseReport[] }> {
  const mutex = new Mutex();
  const gate = new StartGate();
  const stop = new Int32Array(new SharedArrayBuffer(4));
  stop[0] = roles.filter((r) => r !== 'watch').length;
  const done = runWorkers<MisuseReport>(
    MISUSE,
    roles.length,
    (i) => ({ role: roles[i], mutexBuffer: mutex.buffer, gateBuffer: gate.buffer, stopBuffer: stop.buffer, rounds, deadlineMs: 20_000 }),
    30_000, // a locker asleep on a free mutex never returns: the workers are ended here and the test fails
  );
  await gate.openWhenReady(roles.length);
  return { mutex, reports: await done };
}

// The old unlock() was Drepper's atomic decrement: on a free mutex it stored −1 for a moment, then 0, and
// threw. Another thread could see that −1. A watcher thread reading the word in a tight loop sees it
// within a few thousand misused unlocks (checked against the old code); with compare-and-swap there is
// nothing to see.
t.test('unlocking a free mutex throws and never writes its word (a watcher thread sees only 0)', async (t) => {
  const ROUNDS = 200_000;
  const { mutex, reports } = await misuse(['misuse', 'watch'], ROUNDS);
  const [unlocker, watcher] = reports;
  t.equal(unlocker!.threw, ROUNDS, `each of ${ROUNDS} unlock() calls threw`);
  t.equal(unlocker!.returned, 0);
  t.ok(watcher!.reads! > 0, `the watcher read the word ${watcher!.reads} times while unlock() was misused`);
  t.same(Object.keys(watcher!.seen!), ['0'], `values the watcher saw: ${JSON.stringify(watcher!.seen)}`);
  t.notOk(mutex.locked);
});

// What the −1 did: a lock() that found it took the slow path, exchanged in 2 and could fall asleep just
// before the faulty unlock stored 0 back, with no notify — asleep on a free mutex for good. Now a misused
// unlock() writes nothing on a free mutex, so the locker always finds it FREE or its own: it never takes
// the slow path (contention stays 0) and finishes every round. A mutex keeps no owner, so a misused
// unlock() that lands while the locker holds the lock releases it; the locker's own unlock() then
// throws — each such theft is counted on both sides and must match.
t.test('a thread that locks while another misuses unlock() always gets the lock and never hangs', async (t) => {
  const ROUNDS = 200_000;
  const { mutex, reports } = await misuse(['misuse', 'lock'], ROUNDS);
  const [unlocker, locker] = reports;
  t.equal(locker!.locked, ROUNDS, `the locker took the lock ${ROUNDS} times`);
  t.equal(unlocker!.threw! + unlocker!.returned!, ROUNDS, 'every misused unlock() returned');
  t.equal(mutex.contention, 0, 'the locker never found the word taken by the misused unlock()');
  t.equal(unlocker!.returned, locker!.lostToMisuse, `unlock() calls that released the locker's lock: ${unlocker!.returned}, and the locker saw each`);
  t.notOk(mutex.locked, 'free at the end');
});

t.test('lockAsync waits without blocking the event loop and gets the lock when it is freed', async (t) => {
  const m = new Mutex();
  m.lock();
  let acquired = false;
  const p = m.lockAsync().then(() => {
    acquired = true;
  });
  await new Promise((r) => setTimeout(r, 30)); // the event loop ran: lockAsync did not block it
  t.notOk(acquired, 'still waiting while the lock is held');
  m.unlock();
  await p;
  t.ok(acquired, 'acquired after unlock');
  t.ok(m.locked, 'and holds it');
  m.unlock();
  t.equal(m.contention, 1, 'one contended acquisition was counted');
});

t.test('attached from its buffer, two Mutex objects are the same lock', async (t) => {
  const a = new Mutex();
  const b = new Mutex(a.buffer);
  a.lock();
  t.notOk(b.tryLock());
  a.unlock();
  t.ok(b.tryLock());
  b.unlock();
});
