// The parent table's health transitions (upstream/parent-table.ts) under a real race: worker threads
// hammer one shared table at once. A check-then-set version is shown to lose (several threads "win"),
// the compare-and-swap one gives exactly one winner per transition.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { ParentTable } from '../src/upstream/parent-table.ts';

const THREADS = 4;

/** Run `body` (source of a function (table) => result) in THREADS threads released together; their results. */
async function raceAll<R>(table: ParentTable, body: string): Promise<R[]> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const url = new URL('../src/upstream/parent-table.ts', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ ParentTable }) => {
      const table = new ParentTable(workerData.buffer, workerData.count);
      const gate = new Int32Array(workerData.gate);
      Atomics.add(gate, 0, 1);
      while (Atomics.load(gate, 0) < ${THREADS}) {} // start together
      parentPort.postMessage((${body})(table));
    });`;
  const results = await Promise.all(
    Array.from({ length: THREADS }, () =>
      new Promise<R>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { buffer: table.buffer, count: table.count, gate: gate.buffer } });
        w.once('message', (n: R) => void w.terminate().then(() => resolve(n)));
        w.once('error', reject);
      }),
    ),
  );
  return results;
}

/** The same, summing numeric results. */
async function race(table: ParentTable, body: string): Promise<number> {
  return (await raceAll<number>(table, body)).reduce((a, b) => a + b, 0);
}

t.test('mark down: many threads fail at once, exactly one marks the parent down', async (t) => {
  for (let round = 0; round < 5; round++) {
    const table = ParentTable.create(2);
    const winners = await race(table, `(table) => { let won = 0; for (let i = 0; i < 200; i++) if (table.failed(1, Date.now(), { downAfter: 3, retryMs: 60000 })) won++; return won; }`);
    t.equal(winners, 1, `round ${round}: one thread marked it down`);
    t.equal(table.read(1).downs, 1);
    t.equal(table.read(1).failures, THREADS * 200, 'no failure lost');
    t.notOk(table.isUp(1));
    t.ok(table.isUp(0), 'the other parent untouched');
  }
});

t.test('the trial: a down parent past its retry time admits exactly one caller per period', async (t) => {
  for (let round = 0; round < 5; round++) {
    const table = ParentTable.create(1);
    table.failed(0, Date.now() - 10_000, { downAfter: 1, retryMs: 1 }); // down, retry time long past
    const admitted = await race(table, `(table) => { let n = 0; const now = Date.now(); for (let i = 0; i < 200; i++) if (table.admit(0, now, 60000)) n++; return n; }`);
    t.equal(admitted, 1, `round ${round}: one trial among ${THREADS} threads × 200 tries`);
    t.notOk(table.admit(0, Date.now(), 60000), 'none more in this period');
    t.ok(table.admit(0, Date.now() + 61_000, 60000), 'one in the next period');
    t.ok(table.succeeded(0), 'a successful trial brings it up (and says so once)');
    t.notOk(table.succeeded(0), '…only once');
    t.ok(table.admit(0, Date.now(), 60000), 'up: everyone admitted');
  }
});

t.test('the trial, period after period: exactly one thread per period; check-then-set gives some periods twice', async (t) => {
  // Every thread walks the same clock, periods 1…N (now = k·10 ms, retry 10 ms), asking for the trial in
  // each. Returned: how many periods were granted more than once. With the CAS, none; with the naive
  // read-then-store on the same word, threads that read the old value together both take it.
  const PERIODS = 20_000;
  const walk = (ask: string): string => `(table) => {
    const at = new BigInt64Array(table.buffer, table.buffer.byteLength - 8, 1);
    const won = new Uint8Array(${PERIODS} + 1);
    for (let k = 1; k <= ${PERIODS}; k++) if (${ask}) won[k] = 1;
    return won; }`;
  const duplicates = async (ask: string): Promise<{ twice: number; granted: number }> => {
    const table = ParentTable.create(1);
    table.failed(0, -1_000_000, { downAfter: 1, retryMs: 0 }); // down since long ago
    const wins = await raceAll<Uint8Array>(table, walk(ask));
    let twice = 0;
    let granted = 0;
    for (let k = 1; k <= PERIODS; k++) {
      const n = wins.reduce((sum, w) => sum + w[k]!, 0);
      granted += n > 0 ? 1 : 0;
      twice += n > 1 ? 1 : 0;
    }
    return { twice, granted };
  };
  const safe = await duplicates('table.admit(0, k * 10, 10)');
  t.equal(safe.twice, 0, `compare-and-swap: no period granted twice (${safe.granted} granted)`);
  let naive = { twice: 0, granted: 0 };
  for (let round = 0; round < 5 && naive.twice === 0; round++) {
    naive = await duplicates('(() => { const seen = Atomics.load(at, 0); if (BigInt(k * 10) < seen) return false; Atomics.store(at, 0, BigInt(k * 10 + 10)); return true; })()');
  }
  t.ok(naive.twice > 0, `check-then-set: ${naive.twice} periods granted more than once (the race the CAS prevents)`);
});

t.test('active gauge and counters add up across threads', async (t) => {
  const table = ParentTable.create(3);
  await race(table, `(table) => { for (let i = 0; i < 1000; i++) { table.begin(2); table.selected(2); table.end(2); } table.begin(2); return 0; }`);
  const r = table.read(2);
  t.equal(r.requests, THREADS * 1001);
  t.equal(r.selected, THREADS * 1000);
  t.equal(r.active, THREADS, 'each thread holds one');
  t.equal(ParentTable.countIn(table.buffer), 3, 'the count is read back from the buffer size');
});
