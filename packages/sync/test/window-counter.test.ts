import t from 'tap';
import { DistinctWindow, WindowCounter } from '@proxyd/sync/window-counter';
import { runWorkers, StartGate } from './workers/run.ts';

t.test('a sliding window weighs the previous window by how much of it is still inside', async (t) => {
  const c = new WindowCounter(new BigInt64Array(new SharedArrayBuffer(16)));
  const W = 60_000;
  for (let i = 0; i < 10; i++) c.add(0, 120_000 + i, W);
  t.equal(c.count(0, 130_000, W), 10, 'ten in this window');
  t.equal(c.count(0, 180_000, W), 10, 'the next window begins: all ten still weigh fully');
  t.equal(c.count(0, 210_000, W), 5, 'half-way through the next window: half of them');
  t.equal(c.add(0, 210_000, W), 6, 'add returns the estimate after it');
  t.equal(c.count(0, 270_000, W), 0.5, 'half-way through the window after: only the one added last window, at half weight');
  t.equal(c.count(0, 400_000, W), 0, 'and then nothing');
});

t.test('four threads adding to one counter, racing its roll-over to a new window, lose no increment', async (t) => {
  const words = new BigInt64Array(new SharedArrayBuffer(16));
  const clock = new Int32Array(new SharedArrayBuffer(4));
  clock[0] = 5_000; // window 5 (of 1 s); its bucket (odd) still counts window 3: the first adds race to roll it over
  words[1] = (3n << 32n) | 999n;
  const gate = new StartGate();
  const ADDS = 100_000;
  const done = runWorkers(new URL('./workers/window-add.worker.ts', import.meta.url), 4, () => ({ wordsBuffer: words.buffer, gateBuffer: gate.buffer, adds: ADDS, clockBuffer: clock.buffer }));
  await gate.openWhenReady(4);
  await done;
  t.equal(new WindowCounter(words).count(0, 5_000, 1000), 4 * ADDS, 'every increment counted in its window');
});

t.test('distinct items: linear counting on 32 bits', async (t) => {
  const d = new DistinctWindow(new BigInt64Array(new SharedArrayBuffer(16)));
  const W = 60_000;
  for (let i = 0; i < 30; i++) d.add(0, 1000, W, '127.0.0.1:443');
  t.ok(d.count(0, 1000, W) < 1.1, 'one destination thirty times is one');
  let estimate = 0;
  for (let port = 1; port <= 50; port++) estimate = d.add(0, 1000 + port, W, `127.0.0.1:${port}`);
  t.ok(estimate >= 25, `fifty distinct ports estimate ${estimate.toFixed(1)} (≥ 25)`);
  t.ok(d.count(0, 61_000, W) >= 25, 'still counted early in the next window');
  t.equal(d.count(0, 200_000, W), 0, 'gone two windows later');
});
