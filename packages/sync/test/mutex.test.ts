import t, { type Test } from 'tap';
import { Mutex } from '@proxyd/sync/mutex';
import { runWorkers, StartGate } from './workers/run.ts';

const WORKER = new URL('./workers/mutex-increment.worker.ts', import.meta.url);
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
