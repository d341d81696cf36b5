import t from 'tap';
import { Semaphore } from '@proxyd/sync/semaphore';
import { runWorkers, StartGate } from './workers/run.ts';

const CONTEND = new URL('./workers/semaphore-contend.worker.ts', import.meta.url);
const RELEASE_LATER = new URL('./workers/semaphore-release-later.worker.ts', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('8 threads contend for 3 permits: never more than 3 holders, every thread finishes', async (t) => {
  const THREADS = 8;
  const ROUNDS = 2_000;
  const sem = Semaphore.create({ permits: 3, maxWaiting: 64 });
  const gauge = new Int32Array(new SharedArrayBuffer(8));
  const gate = new StartGate();
  const done = runWorkers<{ acquired: number }>(CONTEND, THREADS, () => ({
    semBuffer: sem.buffer,
    gaugeBuffer: gauge.buffer,
    gateBuffer: gate.buffer,
    rounds: ROUNDS,
  }));
  await gate.openWhenReady(THREADS);
  const results = await done;
  t.same(results.map((r) => r.acquired), Array(THREADS).fill(ROUNDS), 'every thread acquired every round');
  t.ok(gauge[1]! <= 3, `most holders at once: ${gauge[1]} (≤ 3)`);
  t.equal(gauge[1], 3, 'all 3 permits were in use at some moment (the test really contended)');
  t.equal(sem.free, 3, 'all permits free at the end');
  t.equal(sem.waiting, 0, 'nobody left waiting');
  t.equal(sem.admittedTotal, THREADS * ROUNDS, 'one admission per acquire');
});

t.test('async waiters in one thread are admitted in arrival order', async (t) => {
  const sem = Semaphore.create({ permits: 2, maxWaiting: 100 });
  t.equal(sem.tryAcquire(), true);
  t.equal(sem.tryAcquire(), true);
  t.equal(sem.tryAcquire(), false, 'no third permit');
  const order: number[] = [];
  const waiters = Array.from({ length: 40 }, (_, i) =>
    sem.acquireAsync().then((r) => {
      order.push(i);
      return r;
    }),
  );
  t.equal(sem.waiting, 40);
  t.equal(sem.tryAcquire(), false, 'tryAcquire does not pass the queue');
  // Release one permit at a time, interleaved with newcomers who must queue behind everyone before them.
  const late: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    sem.release();
    if (i < 5) late.push(sem.acquireAsync().then(() => order.push(100 + i)));
    await sleep(1);
  }
  for (let i = 0; i < 7; i++) sem.release(); // the 5 late ones and the 2 original holders
  await Promise.all([...waiters, ...late]);
  t.same(order, [...Array.from({ length: 40 }, (_, i) => i), 100, 101, 102, 103, 104], 'first come, first served');
  t.equal(sem.free, 2, 'every permit is back');
});

t.test('a timeout removes the waiter and leaves the permit count exact', async (t) => {
  const sem = Semaphore.create({ permits: 1 });
  t.equal(await sem.acquireAsync(), 'acquired');
  const started = performance.now();
  t.equal(await sem.acquireAsync({ timeoutMs: 50 }), 'timed-out');
  t.ok(performance.now() - started >= 45, 'waited about the timeout');
  t.equal(sem.waiting, 0, 'the waiter left the queue');
  t.equal(sem.acquire(20), 'timed-out', 'blocking acquire times out the same way');
  t.equal(sem.waiting, 0);
  t.equal(sem.free, 0, 'the one permit is still held');
  const next = sem.acquireAsync({ timeoutMs: 5_000 });
  sem.release();
  t.equal(await next, 'acquired', 'the next waiter gets the released permit, not the timed-out ones');
  sem.release();
  t.equal(sem.free, 1);
  t.throws(() => sem.release(), /no permit is held/, 'releasing more than was acquired is an error');
  t.equal(sem.free, 1, 'and does not over-count');
});

t.test('an aborted signal removes the waiter, rejects, and the next in line is served', async (t) => {
  const sem = Semaphore.create({ permits: 1 });
  sem.tryAcquire();
  const ac = new AbortController();
  const first = sem.acquireAsync({ timeoutMs: 5_000 });
  const aborted = sem.acquireAsync({ signal: ac.signal });
  const third = sem.acquireAsync({ timeoutMs: 5_000 });
  t.equal(sem.waiting, 3);
  ac.abort();
  await t.rejects(aborted, { name: 'AbortError' });
  t.equal(sem.waiting, 2, 'the aborted waiter left');
  sem.release();
  t.equal(await first, 'acquired');
  sem.release();
  t.equal(await third, 'acquired', 'the cancelled ticket is skipped');
  sem.release();
  t.equal(sem.free, 1);
  t.equal(sem.waiting, 0);
  await t.rejects(sem.acquireAsync({ signal: AbortSignal.abort() }), { name: 'AbortError' }, 'already aborted');
  t.equal(sem.free, 1, 'no permit taken by an already-aborted call');
});

t.test('a full waiting queue is refused at once', async (t) => {
  const sem = Semaphore.create({ permits: 1, maxWaiting: 2 });
  sem.tryAcquire();
  const a = sem.acquireAsync();
  const b = sem.acquireAsync();
  t.equal(await sem.acquireAsync(), 'queue-full');
  t.equal(sem.acquire(1_000), 'queue-full');
  sem.release();
  sem.release();
  t.same(await Promise.all([a, b]), ['acquired', 'acquired']);
  sem.release();
});

t.test('a permit released in another thread wakes an async waiter here', async (t) => {
  const sem = Semaphore.create({ permits: 1 });
  const worker = runWorkers<{ result: string }>(RELEASE_LATER, 1, () => ({ semBuffer: sem.buffer, holdMs: 100 }));
  // Until the worker holds it: starting a worker can take seconds on a loaded machine (a 1 s bound here
  // once let this thread take the free permit first, and the worker timed out).
  for (const deadline = performance.now() + 20_000; sem.free === 1 && performance.now() < deadline; ) await sleep(5);
  t.equal(sem.free, 0, 'the worker holds the permit');
  const started = performance.now();
  t.equal(await sem.acquireAsync({ timeoutMs: 10_000 }), 'acquired');
  t.ok(performance.now() - started < 5_000, 'woken by the release, not by the timeout');
  t.same(await worker, [{ result: 'acquired' }]);
  sem.release();
});

t.test('bad arguments are clear errors', async (t) => {
  t.throws(() => Semaphore.create({ permits: 0 }), /permits must be an integer ≥ 1/);
  t.throws(() => Semaphore.create({ permits: 1, maxWaiting: -1 }), /maxWaiting/);
});

// Regression: a timer may fire a moment before performance.now() reaches the deadline; the wait must
// then still hold a timer, or the process exits with the acquire pending ("test unfinished").
t.test('many short timeouts each settle, with nothing else keeping the process alive', async (t) => {
  const sem = Semaphore.create({ permits: 1 });
  sem.tryAcquire();
  let timedOut = 0;
  for (let i = 0; i < 300; i++) if ((await sem.acquireAsync({ timeoutMs: 1 + (i % 3) })) === 'timed-out') timedOut++;
  t.equal(timedOut, 300);
  t.equal(sem.waiting, 0);
  sem.release();
});
