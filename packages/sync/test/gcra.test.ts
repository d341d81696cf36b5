import t, { type Test } from 'tap';
import { Gcra, gcraRate } from '@proxyd/sync/gcra';
import { KeyTable } from '@proxyd/sync/key-table';
import { runWorkers, StartGate } from './workers/run.ts';

const WORKER = new URL('./workers/gcra-hammer.worker.ts', import.meta.url);
const THREADS = 4;
const ATTEMPTS = 50_000;
const BURST = 100_000; // half of the 200,000 attempts may pass

async function hammer(atomic: boolean): Promise<{ admitted: number; retries: number; slots: number[] }> {
  const table = KeyTable.create({ slots: 64, bigWords: 1, intWords: 0 });
  const gate = new StartGate();
  const rate = gcraRate(10, BURST);
  const done = runWorkers<{ admitted: number; retries: number; slot: number }>(WORKER, THREADS, () => ({
    tableBuffer: table.buffer,
    gateBuffer: gate.buffer,
    attempts: ATTEMPTS,
    rate,
    atomic,
    key: '203.0.113.7',
  }));
  await gate.openWhenReady(THREADS);
  const results = await done;
  return { admitted: results.reduce((n, r) => n + r.admitted, 0), retries: results.reduce((n, r) => n + r.retries, 0), slots: results.map((r) => r.slot) };
}

t.test('without the CAS, four threads deciding on one key admit more than the limit (the test can see the race)', async (t) => {
  const totals: number[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const { admitted } = await hammer(false);
    totals.push(admitted);
    if (admitted > BURST) break;
  }
  t.ok(totals.some((n) => n > BURST), `some run admitted more than ${BURST}: ${totals.join(', ')}`);
});

t.test(`with the CAS loop, ${THREADS} threads × ${ATTEMPTS} attempts at a frozen clock admit exactly the burst`, async (t) => {
  const { admitted, retries, slots } = await hammer(true);
  t.equal(new Set(slots).size, 1, 'every thread found the key in the same slot');
  t.equal(admitted, BURST, `admitted ${admitted}`);
  t.comment(`CAS retries: ${retries} (${((retries / (THREADS * ATTEMPTS)) * 100).toFixed(2)}% of attempts)`);
});

t.test('one thread: burst at once, then one per interval; the wait is what Retry-After says', async (t: Test) => {
  const words = new BigInt64Array(new SharedArrayBuffer(8));
  const gcra = new Gcra(words);
  const rate = gcraRate(10, 3); // 100 ms apart, 3 at once
  const t0 = 5_000_000_000n;
  t.equal(gcra.available(0, t0, rate), 3, 'a fresh key has the whole burst');
  for (let i = 0; i < 3; i++) t.equal(gcra.take(0, t0, rate), 0n, `request ${i + 1} of the burst admitted`);
  t.equal(gcra.available(0, t0, rate), 0, 'burst used up');
  t.equal(gcra.take(0, t0, rate), 100_000_000n, 'the fourth waits one interval (ns)');
  t.equal(gcra.take(0, t0 + 99_999_999n, rate), 1n, '1 ns early: still refused');
  t.equal(gcra.take(0, t0 + 100_000_000n, rate), 0n, 'after one interval: admitted');
  t.equal(gcra.available(0, t0 + 10_000_000_000n, rate), 3, 'after a long pause the burst is back');
  t.throws(() => gcraRate(0, 1), RangeError);
  t.throws(() => gcraRate(1, 0), RangeError);
});
