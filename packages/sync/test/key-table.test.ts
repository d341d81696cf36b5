import t from 'tap';
import { Gcra, gcraRate } from '@proxyd/sync/gcra';
import { KeyTable } from '@proxyd/sync/key-table';
import { runWorkers, StartGate } from './workers/run.ts';

t.test('a key keeps its slot; its words start at zero; names are kept for display', async (t) => {
  const table = KeyTable.create({ slots: 16, bigWords: 2, intWords: 1 });
  const h = KeyTable.hash('198.51.100.7');
  const s = table.find('198.51.100.7', h, 10n);
  t.equal(table.find('198.51.100.7', h, 11n), s, 'found again in the same slot');
  t.equal(table.peek(h), s, 'peek finds it');
  t.equal(table.peek(KeyTable.hash('198.51.100.8')), -1, 'peek does not claim');
  t.same([table.big[s * 2], table.big[s * 2 + 1], table.int[s]], [0n, 0n, 0], 'its words are zero');
  t.equal(table.keyAt(s), '198.51.100.7');
  t.equal(table.touched(s), 11n, 'touched by the last find');
  t.ok(table.holds(s, h));
  t.throws(() => KeyTable.create({ slots: 12, bigWords: 1, intWords: 0 }), RangeError, 'slots must be a power of two');
});

t.test('100,000 distinct keys: fixed memory, the stalest go, hot keys stay limited', async (t) => {
  const shape = { slots: 4096, bigWords: 1, intWords: 0 };
  const table = KeyTable.create(shape);
  const bytes = table.buffer.byteLength;
  t.equal(bytes, KeyTable.bytesFor(shape), 'allocated once: bytesFor() says how much');
  const gcra = new Gcra(table.big);
  const rate = gcraRate(1, 5); // 5 at once, then one a second
  const hot = ['203.0.113.1', '203.0.113.2', '203.0.113.3'];
  const admittedHot = new Map(hot.map((k) => [k, 0]));
  let now = 1_000_000_000n;
  for (let i = 0; i < 100_000; i++) {
    now += 10_000n; // 100,000 keys in one simulated second (ns): no hot key earns a new request
    const key = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    gcra.take(table.find(key, KeyTable.hash(key), now) * shape.bigWords, now, rate);
    if (i % 100 === 0) {
      for (const k of hot) if (gcra.take(table.find(k, KeyTable.hash(k), now), now, rate) === 0n) admittedHot.set(k, admittedHot.get(k)! + 1);
    }
  }
  t.equal(table.buffer.byteLength, bytes, `still ${bytes} bytes`);
  t.ok(table.counts.evictions > 90_000, `${table.counts.evictions} evictions made room`);
  for (const k of hot) {
    t.equal(admittedHot.get(k), 5, `${k}: 5 admitted of 1000 attempts (its burst), never reset by eviction`);
    t.ok(table.peek(KeyTable.hash(k)) >= 0, `${k} is still in the table`);
  }
  t.equal([...table.occupied()].length, shape.slots, 'every slot in use');
});

t.test('four threads inserting the same 2,000 keys at once agree on every slot', async (t) => {
  const table = KeyTable.create({ slots: 16_384, bigWords: 1, intWords: 0 }); // room enough that nothing is evicted
  const keys = Array.from({ length: 2000 }, (_, i) => `user:${i}`);
  const gate = new StartGate();
  const done = runWorkers<{ slots: number[] }>(new URL('./workers/key-insert.worker.ts', import.meta.url), 4, () => ({ tableBuffer: table.buffer, gateBuffer: gate.buffer, keys }));
  await gate.openWhenReady(4);
  const results = await done;
  const disagree = keys.filter((_, i) => new Set(results.map((r) => r.slots[i])).size !== 1);
  t.same(disagree, [], 'one slot per key, whichever thread claimed it');
  t.equal(new Set(results[0]!.slots).size, keys.length, 'distinct keys, distinct slots');
  t.equal(table.counts.evictions, 0, 'nothing evicted');
  t.equal(table.counts.claims, keys.length, 'each slot claimed exactly once');
});
