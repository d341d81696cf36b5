import t from 'tap';
import { Semaphore } from '@proxyd/sync/semaphore';
import { PermitLeases } from '@proxyd/sync/permit-leases';
import { runWorkers, StartGate } from './workers/run.ts';

const RACE = new URL('./workers/lease-release.worker.ts', import.meta.url);
const HOLDER = new URL('./workers/lease-holder.worker.ts', import.meta.url);
const THREADS = 2;
const LEASES = 20_000;

interface RaceOutcome {
  /** Leases whose permit was given back more than once / never. */
  doubled: number;
  missing: number;
  /** Calls that returned true, over both threads. */
  trues: number;
  /** Permits free after the race; exactly LEASES when each lease gave its permit back once. */
  free: number;
}

/**
 * LEASES permits handed out with a lease each, and as many more held by others (so that a double
 * release shows as one permit too many instead of an error); then two threads race to give back each
 * leased permit, in the same order, from the same start line.
 */
async function race(mode: 'naive' | 'cas'): Promise<RaceOutcome> {
  const sem = Semaphore.create({ permits: 2 * LEASES, maxWaiting: 0 });
  for (let i = 0; i < 2 * LEASES; i++) if (!sem.tryAcquire()) throw new Error('setup: a permit was missing');
  let leasesBuffer: SharedArrayBuffer;
  if (mode === 'naive') {
    const flags = new Int32Array(new SharedArrayBuffer(LEASES * 4)).fill(1); // every lease HELD
    leasesBuffer = flags.buffer as SharedArrayBuffer;
  } else {
    const leases = PermitLeases.create(LEASES);
    for (let i = 0; i < LEASES; i++) if (leases.take() !== i) throw new Error('setup: leases out of order');
    leasesBuffer = leases.buffer;
  }
  const tally = new Int32Array(new SharedArrayBuffer(LEASES * 4));
  const barrier = new Int32Array(new SharedArrayBuffer(8));
  const gate = new StartGate();
  const done = runWorkers<{ released: number }>(RACE, THREADS, () => ({
    mode,
    semBuffer: sem.buffer,
    leasesBuffer,
    tallyBuffer: tally.buffer,
    barrierBuffer: barrier.buffer,
    gateBuffer: gate.buffer,
    count: LEASES,
    batch: 200,
    threads: THREADS,
  }));
  await gate.openWhenReady(THREADS);
  const reports = await done;
  return {
    doubled: tally.filter((n) => n > 1).length,
    missing: tally.filter((n) => n === 0).length,
    trues: reports.reduce((n, r) => n + r.released, 0),
    free: sem.free,
  };
}

t.test('without a CAS, two threads releasing the same leases give some permit back twice (the test can see the race)', async (t) => {
  // The race window is the few instructions between the check and the write: likely, not certain, in
  // one run of 20,000 leases. Up to 10 runs; at least one must double-release.
  const outcomes: RaceOutcome[] = [];
  for (let attempt = 0; attempt < 10; attempt++) {
    const outcome = await race('naive');
    outcomes.push(outcome);
    if (outcome.doubled > 0) break;
  }
  const last = outcomes.at(-1)!;
  t.ok(last.doubled > 0, `double releases per run: ${outcomes.map((o) => o.doubled).join(', ')}`);
  t.equal(last.free, LEASES + last.doubled, `and each one freed a permit that somebody else still held (${last.free - LEASES} too many)`);
});

t.test('with PermitLeases, the same race releases each permit exactly once, every time', async (t) => {
  for (let run = 0; run < 3; run++) {
    const { doubled, missing, trues, free } = await race('cas');
    t.same({ doubled, missing, trues, free }, { doubled: 0, missing: 0, trues: LEASES, free: LEASES }, `run ${run}: one true per lease, ${LEASES} permits back`);
  }
});

t.test('take() hands out each lease once and answers -1 when all are out; retire() recycles', async (t) => {
  const sem = Semaphore.create({ permits: 3 });
  const leases = PermitLeases.create(3);
  const words = new Int32Array(leases.buffer);
  const taken = [leases.take(), leases.take(), leases.take()];
  t.same([...taken].sort(), [0, 1, 2], 'three different leases');
  t.same(Array.from(words), [1, 1, 1], 'each word HELD');
  t.equal(leases.take(), -1, 'all out: -1');
  for (let i = 0; i < 3; i++) sem.tryAcquire();
  t.equal(leases.retire(taken[1]!, sem), true, 'retire() gives back a permit nobody gave back …');
  t.equal(words[taken[1]!], 0, '… and the word is FREE again');
  t.equal(sem.free, 1);
  t.equal(leases.take(), taken[1], 'the retired lease is handed out again');
  t.equal(leases.take(), -1, 'and then none is left');
});

t.test('release() answers true once per take(); retire() answers whether it was the one that gave the permit back', async (t) => {
  const sem = Semaphore.create({ permits: 2 });
  const leases = PermitLeases.create(2);
  const attached = new PermitLeases(leases.buffer); // as another thread sees it
  sem.tryAcquire();
  sem.tryAcquire();
  const a = leases.take();
  const b = leases.take();
  t.equal(attached.release(a, sem), true, 'the holder gives the permit back');
  t.equal(attached.release(a, sem), false, 'a second release() does nothing');
  t.equal(leases.release(a, sem), false, '… from any thread');
  t.equal(sem.free, 1, 'one permit back, not two');
  t.equal(leases.retire(a, sem), false, 'retire() after the holder released: not this call');
  t.equal(sem.free, 1, 'and the count is unchanged');
  t.equal(leases.retire(b, sem), true, 'retire() of a lease nobody released: this call gave it back');
  t.equal(sem.free, 2);
  t.equal(attached.release(b, sem), false, 'a late release() of a retired (FREE) lease does nothing');
  t.equal(sem.free, 2, 'and gives nothing back twice');
  t.throws(() => PermitLeases.create(0), /size must be an integer/);
});

t.test('a worker that dies holding its permit: retire() gives it back, once; one that released: retire() does not', async (t) => {
  const sem = Semaphore.create({ permits: 2 });
  const leases = PermitLeases.create(4);
  const run = (lease: number, dies: boolean) =>
    runWorkers<{ released: boolean }>(HOLDER, 1, () => ({ semBuffer: sem.buffer, leasesBuffer: leases.buffer, lease, dies }), 20_000);
  t.equal(sem.tryAcquire() && sem.tryAcquire(), true);
  const dead = leases.take();
  const alive = leases.take();
  await t.rejects(run(dead, true), /died holding its permit/, 'the first worker dies');
  t.same(await run(alive, false), [{ released: true }], 'the second gives its permit back and exits');
  t.equal(sem.free, 1, 'only the living worker\'s permit is back');
  t.equal(leases.retire(dead, sem), true, 'retiring the dead worker\'s lease gives its permit back');
  t.equal(leases.retire(alive, sem), false, 'retiring the other gives nothing back twice');
  t.equal(sem.free, 2, 'both permits back, each once');
});
