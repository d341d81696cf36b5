// The semaphore's queue across the ticket counter's wrap-around. Tickets are Int32 (2^31 − 1 → −2^31)
// and a slot's tag keeps only a ticket's low 30 bits, so the tag wraps at every multiple of 2^30; both
// wraps are also where the slot index and the queue length are computed across a sign change. The create
// option `firstTicket` starts the counter just before a wrap, and each test checks what the queue
// promises — first come first served, no permit lost or given twice, exact waiting and held counts — with
// waiters that give up mixed in.
import t from 'tap';
import { Semaphore } from '@proxyd/sync/semaphore';
import { runWorkers, StartGate } from './workers/run.ts';

const QUEUE = new URL('./workers/semaphore-queue.worker.ts', import.meta.url);
const CONTEND = new URL('./workers/semaphore-contend.worker.ts', import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starting points a few tickets before a wrap: Int32 (and tag), tag only, and −1 → 0 (tag). */
const WRAPS = [
  { name: 'Int32 2^31 − 1 → −2^31', start: 2 ** 31 - 10 },
  { name: 'tag 2^30 − 1 → 2^30', start: 2 ** 30 - 10 },
  { name: '−1 → 0', start: -10 },
];

/** True when `issued` tickets from `start` passed a multiple of 2^30 (where the tag wraps). */
function crossed(start: number, issued: number): boolean {
  return Math.floor((start + issued - 1) / 2 ** 30) > Math.floor(start / 2 ** 30);
}

/** Poll `ready` every millisecond until it holds; throws after `ms` (every wait here is bounded). */
async function until(what: string, ready: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(1);
  }
}

t.test('create() takes firstTicket: any Int32, the queue starts empty there', async (t) => {
  const sem = Semaphore.create({ permits: 1, firstTicket: 2 ** 31 - 1 });
  t.same(sem.tickets, { nowServing: 2 ** 31 - 1, nextTicket: 2 ** 31 - 1 });
  sem.tryAcquire();
  const p = sem.acquireAsync();
  t.same(sem.tickets, { nowServing: 2 ** 31 - 1, nextTicket: -(2 ** 31) }, 'the next ticket is −2^31');
  sem.release();
  t.equal(await p, 'acquired');
  sem.release();
  t.throws(() => Semaphore.create({ permits: 1, firstTicket: 2 ** 31 }), /firstTicket must be an Int32/);
  t.throws(() => Semaphore.create({ permits: 1, firstTicket: 0.5 }), /firstTicket/);
});

for (const { name, start } of WRAPS) {
  t.test(`async waiters across the wrap ${name}: FIFO, exact counts, timeouts and a full queue mixed in`, async (t) => {
    // 4 slots, so every slot is reused every 4 tickets; each round queues 4 waiters behind 2 held
    // permits (some give up after QUIT_MS), then a 5th that must find the queue full.
    const QUIT_MS = 20;
    const sem = Semaphore.create({ permits: 2, maxWaiting: 4, firstTicket: start });
    t.ok(sem.tryAcquire() && sem.tryAcquire(), 'both permits held');
    const ROUNDS = 32;
    const order: string[] = [];
    const expected: string[] = [];
    const problems: string[] = [];
    const check = (ok: boolean, what: string) => void (ok || problems.push(what));
    let issued = 0;
    let stalled = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const pattern = round % 16; // bit i set: waiter i gives up after QUIT_MS
      const t0 = performance.now();
      const waiters = [0, 1, 2, 3].map((i) => {
        const label = `${round}.${i}`;
        const givesUp = ((pattern >> i) & 1) === 1;
        if (!givesUp) expected.push(label);
        const result = sem.acquireAsync({ timeoutMs: givesUp ? QUIT_MS : 5_000 }).then((r) => {
          if (r === 'acquired') order.push(label);
          return r;
        });
        return { label, givesUp, result };
      });
      issued += 4;
      const waitingNow = sem.waiting;
      // timeoutMs 0: refused if the queue is full, else it takes a ticket and gives it up at once.
      const fifth = await sem.acquireAsync({ timeoutMs: 0 });
      // No quitter can leave before QUIT_MS from t0. If this thread was stalled longer than that (a loaded
      // machine, a GC), quitters may rightly have left already and the two answers above prove nothing.
      if (performance.now() - t0 < QUIT_MS) {
        check(waitingNow === 4, `round ${round}: ${waitingNow} waiting, not 4`);
        check(fifth === 'queue-full', `round ${round}: a 5th waiter was not refused (${fifth})`);
      } else {
        stalled++;
        if (fifth !== 'queue-full') issued++; // it took a ticket
      }
      const quitters = waiters.filter((w) => w.givesUp);
      const stayers = waiters.filter((w) => !w.givesUp);
      for (const w of quitters) check((await w.result) === 'timed-out', `round ${round}: ${w.label} did not time out`);
      check(sem.waiting === stayers.length, `round ${round}: ${sem.waiting} waiting after the timeouts, not ${stayers.length}`);
      // Release one permit per waiter still queued: each release admits the oldest live one.
      for (const w of stayers) {
        sem.release();
        check((await w.result) === 'acquired', `round ${round}: ${w.label} was not admitted`);
      }
      check(sem.held === 2 && sem.free === 0 && sem.waiting === 0, `round ${round}: held ${sem.held}, free ${sem.free}, waiting ${sem.waiting}`);
      const { nowServing, nextTicket } = sem.tickets;
      check(nowServing === nextTicket && nextTicket === ((start + issued) | 0), `round ${round}: tickets ${nowServing}..${nextTicket}`);
      if (problems.length > 0) break; // a broken queue would make later rounds wait out their timeouts
    }
    t.same(problems, [], 'every round: counts, timeouts, admissions and ticket numbers as expected');
    if (stalled > 0) t.comment(`${stalled} of ${ROUNDS} rounds stalled past ${QUIT_MS} ms before their first checks (skipped)`);
    t.same(order, expected, `${expected.length} waiters admitted in arrival order`);
    t.ok(crossed(start, issued), `the tickets ran from ${start} to ${sem.tickets.nextTicket}: across the wrap`);
    sem.release();
    sem.release();
    t.equal(sem.free, 2, 'every permit is back');
    t.equal(sem.admittedTotal, 2 + expected.length, 'one admission per acquired waiter, none twice');
    t.throws(() => sem.release(), /no permit is held/, 'and none left over');
  });
}

for (const { name, start } of WRAPS) {
  t.test(`blocking waiters in 2 worker threads and async waiters here share one FIFO queue across the wrap ${name}`, async (t) => {
    // One permit, held here between rounds. Each round queues 4 arrivals in a known order — worker 1,
    // worker 2 and this thread's async waiters, the roles rotating — some of which give up after 30 ms.
    // Then this thread lets its permit go, and every admitted waiter logs itself and releases at once, so
    // the permit runs down the queue from thread to thread: the log must be the arrival order.
    const sem = Semaphore.create({ permits: 1, maxWaiting: 4, firstTicket: start });
    const log = new Int32Array(new SharedArrayBuffer(4 * 256));
    const mailboxes = [1, 2].map(() => new Int32Array(new SharedArrayBuffer(12))); // [go, timeoutMs, done]
    const sent = [0, 0];
    const workers = runWorkers<{ acquired: number; timedOut: number }>(
      QUEUE,
      2,
      (i) => ({ id: i + 1, semBuffer: sem.buffer, mailboxBuffer: mailboxes[i]!.buffer, logBuffer: log.buffer }),
      60_000,
    );
    const logged = () => Array.from(log.subarray(1, 1 + Atomics.load(log, 0)));
    t.ok(sem.tryAcquire(), 'this thread holds the permit');
    const ROUNDS = 12;
    const roles = [1, 0, 2, 0]; // 1, 2: that worker; 0: an async waiter in this thread
    const expected: number[] = [];
    const problems: string[] = [];
    const check = (ok: boolean, what: string) => void (ok || problems.push(what));
    const longs = [0, 0, 0];
    const shorts = [0, 0, 0];
    let issued = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const asyncResults: Promise<unknown>[] = [];
        let staying = 0;
        for (let i = 0; i < 4; i++) {
          const who = roles[(i + round) % 4]!;
          const givesUp = ((round * 5 + i) % 3) === 0; // a third of the arrivals, at varying places
          const timeoutMs = givesUp ? 30 : 20_000;
          if (givesUp) shorts[who]!++;
          else {
            longs[who]!++;
            expected.push(who);
            staying++;
          }
          const before = sem.tickets.nextTicket;
          if (who === 0) {
            asyncResults.push(
              sem.acquireAsync({ timeoutMs }).then((r) => {
                if (r === 'acquired') {
                  log[1 + Atomics.add(log, 0, 1)] = 0;
                  sem.release();
                }
                check(r === (givesUp ? 'timed-out' : 'acquired'), `round ${round}: async waiter ${i} answered ${r}`);
              }),
            );
          } else {
            const box = mailboxes[who - 1]!;
            Atomics.store(box, 1, timeoutMs);
            Atomics.store(box, 0, 1);
            Atomics.notify(box, 0);
            sent[who - 1]!++;
          }
          // The next arrival queues only once this one holds its ticket: the arrival order is known.
          await until(`round ${round}: arrival ${i} takes a ticket`, () => sem.tickets.nextTicket === ((before + 1) | 0));
          issued++;
        }
        await until(`round ${round}: the quitters leave`, () => sem.waiting === staying);
        sem.release(); // the permit runs down the queue
        await Promise.all(asyncResults);
        await until(`round ${round}: the workers finish`, () => mailboxes.every((box, w) => Atomics.load(box, 2) === sent[w]));
        await until(`round ${round}: the permit comes back`, () => sem.free === 1);
        check(sem.waiting === 0, `round ${round}: ${sem.waiting} still waiting`);
        check(sem.tryAcquire(), `round ${round}: this thread could not take the permit back`);
        if (problems.length > 0) break;
      }
    } finally {
      for (const box of mailboxes) {
        Atomics.store(box, 0, 2);
        Atomics.notify(box, 0);
      }
    }
    const reports = await workers;
    t.same(problems, [], 'every arrival answered as expected, every round ended with the queue empty');
    t.same(logged(), expected, `${expected.length} admissions, in arrival order across 3 threads`);
    t.same(
      reports.map((r) => [r.acquired, r.timedOut]),
      [1, 2].map((w) => [longs[w], shorts[w]]),
      'each worker was admitted for each long wait and timed out for each short one',
    );
    t.ok(crossed(start, issued), `the tickets ran from ${start} to ${sem.tickets.nextTicket}: across the wrap`);
    t.same(sem.tickets, { nowServing: (start + issued) | 0, nextTicket: (start + issued) | 0 });
    sem.release();
    t.equal(sem.free, 1, 'the permit is back');
    t.equal(sem.admittedTotal, 1 + ROUNDS + expected.length, 'this thread once per round, plus each long waiter once');
  });
}

t.test('8 threads contend for 3 permits across the Int32 wrap, a third of rounds giving up: counts stay exact', async (t) => {
  const THREADS = 8;
  const ROUNDS = 2_000;
  const start = 2 ** 31 - 100;
  const sem = Semaphore.create({ permits: 3, maxWaiting: 8, firstTicket: start });
  const gauge = new Int32Array(new SharedArrayBuffer(8));
  const gate = new StartGate();
  const done = runWorkers<{ acquired: number; timedOut: number; queueFull: number }>(CONTEND, THREADS, () => ({
    semBuffer: sem.buffer,
    gaugeBuffer: gauge.buffer,
    gateBuffer: gate.buffer,
    rounds: ROUNDS,
    giveUpEvery: 3,
  }));
  await gate.openWhenReady(THREADS);
  const results = await done;
  const sum = (k: 'acquired' | 'timedOut' | 'queueFull') => results.reduce((n, r) => n + r[k], 0);
  t.same(results.map((r) => r.acquired + r.timedOut + r.queueFull), Array(THREADS).fill(ROUNDS), 'every round of every thread ended');
  t.ok(gauge[1]! <= 3, `most holders at once: ${gauge[1]} (≤ 3)`);
  t.ok(sum('timedOut') > 0, `waiters gave up: ${sum('timedOut')} cancelled tickets (${sum('queueFull')} refused as queue-full)`);
  t.equal(sem.admittedTotal, sum('acquired'), `one admission per acquire (${sum('acquired')})`);
  t.equal(sem.free, 3, 'all permits free at the end');
  t.equal(sem.waiting, 0, 'nobody left waiting');
  const { nowServing, nextTicket } = sem.tickets;
  t.equal(nowServing, nextTicket, 'the queue is empty');
  const issued = (nextTicket - start) >>> 0; // tickets issued, counted modulo 2^32
  t.ok(nextTicket < 0 && issued >= 100, `the ticket counter wrapped: ${start} → ${nextTicket} (${issued} tickets)`);
});
