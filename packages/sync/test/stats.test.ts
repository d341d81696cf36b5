import t from 'tap';
import { Stats } from '@proxyd/sync/stats';
import { runWorkers, StartGate } from './workers/run.ts';
import { NAMES } from './workers/stats-names.ts';

const WORKER = new URL('./workers/stats-add.worker.ts', import.meta.url);

t.test('concurrent increments from 4 threads sum exactly, past 2^32', async (t) => {
  const THREADS = 4;
  const ITERATIONS = 100_000;
  const BYTES = 65_536; // 4 × 100,000 × 64 KiB = 26 GB: a 32-bit counter would have wrapped
  const stats = Stats.create(NAMES);
  const gate = new StartGate();
  const done = runWorkers(WORKER, THREADS, () => ({ statsBuffer: stats.buffer, gateBuffer: gate.buffer, iterations: ITERATIONS, bytes: BYTES }));
  await gate.openWhenReady(THREADS);
  await done;
  t.equal(stats.get('hits'), THREADS * ITERATIONS);
  t.equal(stats.get('bytes'), THREADS * ITERATIONS * BYTES);
  t.equal(stats.get('active'), 0, 'a gauge moved up and down by every thread returns to 0');
  t.same(stats.snapshot(), { hits: 400_000, bytes: 26_214_400_000, active: 0 });
});

t.test('set, unknown names and mismatched attach are errors', async (t) => {
  const stats = Stats.create(NAMES);
  stats.set('active', 7);
  t.equal(new Stats(stats.buffer, NAMES).get('active'), 7, 'attached view sees the same counters');
  t.throws(() => stats.add('nope' as 'hits'), /unknown counter "nope"/);
  t.throws(() => new Stats(stats.buffer, ['a', 'b']), /buffer holds 3 counters, names list 2/);
  t.throws(() => Stats.create(['a', 'a']), /unique/);
});
