/**
 * What decided the cache's store (packages/proxyd/src/cache/shared-store.ts): the cost of a hit's lookup
 * in the shared SQLite file, against the cost of a proxied request; and what several threads writing one
 * file do without a busy timeout (undici #4124: "database is locked") and with one.
 *
 *   node scripts/bench/cache-store.ts [--ms 2000] [--threads 4]
 *
 * A benchmark, not a test: numbers move from run to run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';
import { Writable } from 'node:stream';
import { SharedStore, prepareStoreFile } from '../../packages/proxyd/src/cache/shared-store.ts';
import { UrlPresence } from '../../packages/proxyd/src/cache/url-presence.ts';

const presence = UrlPresence.create();

const { values } = parseArgs({ options: { ms: { type: 'string', default: '2000' }, threads: { type: 'string', default: '4' } } });
const ms = Number(values.ms);
const threads = Number(values.threads);
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'proxyd-store-bench-'));

const counters = new Map<string, number>();
const store = () =>
  new SharedStore({
    file: join(dir, 'c.sqlite'),
    maxBytes: 1 << 30,
    maxObjectBytes: 1 << 26,
    presence,
    counters: { add: (n, d = 1) => void counters.set(n, (counters.get(n) ?? 0) + d), get: (n) => counters.get(n) ?? 0 },
    onError: (err) => console.error('store error:', err.message),
  });

async function put(s: SharedStore, path: string, size: number): Promise<void> {
  const now = Date.now();
  const w = s.createWriteStream({ origin: 'http://127.0.0.1:1', method: 'GET', path, headers: {} }, { statusCode: 200, statusMessage: 'OK', headers: { 'content-length': String(size) }, cachedAt: now, staleAt: now + 3.6e6, deleteAt: now + 7.2e6 }) as Writable;
  await new Promise<void>((resolve, reject) => w.end(Buffer.alloc(size, 7), (err?: Error | null) => (err ? reject(err) : resolve())));
}

function perOp(fn: () => void): { us: number; ops: number } {
  const end = performance.now() + ms;
  let ops = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) fn();
    ops += 100;
  }
  return { us: ((performance.now() - start) * 1000) / ops, ops };
}

prepareStoreFile(join(dir, 'c.sqlite'), presence);
const s = store();
await put(s, '/1k', 1024);
await put(s, '/100k', 100 * 1024);
await put(s, '/1m', 1024 * 1024);
const rows: string[] = ['| operation | per op | note |', '|---|---|---|'];
for (const [path, label] of [['/1k', '1 KiB'], ['/100k', '100 KiB'], ['/1m', '1 MiB (4 chunk rows)']] as const) {
  const key = { origin: 'http://127.0.0.1:1', method: 'GET', path, headers: {} };
  const r = perOp(() => {
    const got = s.lookup(key);
    if (!got) throw new Error('miss');
    if (path === '/1m') (got.body as unknown as { destroy(): void }).destroy(); // a stream over the chunk rows, read as the client reads
  });
  rows.push(`| lookup, ${label} object (${path === '/1m' ? 'the whole row; the chunks are read as the client reads' : "the URL's generation unchanged: no SQLite, the entry from this thread's memo"}) | ${r.us.toFixed(path === '/1m' ? 1 : 2)} µs | ${r.ops} lookups |`);
}
{
  // What the direct path (worker/answer-hit.ts) asks: the remembered entry itself, not a copy.
  const key = { origin: 'http://127.0.0.1:1', method: 'GET', path: '/1k', headers: {} };
  const r = perOp(() => {
    if (!s.current(key)) throw new Error('miss');
  });
  rows.push(`| current(), 1 KiB object (the direct hit's lookup) | ${r.us.toFixed(2)} µs | ${r.ops} lookups |`);
  // A change committed to the URL (by any thread) each time: the index row is read again.
  const changed = perOp(() => {
    presence.changed('http://127.0.0.1:1/1k');
    if (!s.lookup(key)) throw new Error('miss');
  });
  rows.push(`| lookup, 1 KiB object, its generation changed before each (one SELECT of the index row) | ${changed.us.toFixed(1)} µs | ${changed.ops} lookups |`);
}
// For comparison, in the same run: what each lookup cost when it read the whole row (body included).
const raw = new DatabaseSync(join(dir, 'c.sqlite'));
const whole = raw.prepare('SELECT * FROM entries WHERE url = ? AND method = ? AND complete = 1 ORDER BY cachedAt DESC LIMIT 16');
for (const [path, label] of [['/1k', '1 KiB'], ['/100k', '100 KiB']] as const) {
  const r = perOp(() => void whole.all(`http://127.0.0.1:1${path}`, 'GET'));
  rows.push(`| for comparison: the whole row of the ${label} entry (SELECT *, no parsing) | ${r.us.toFixed(1)} µs | ${r.ops} selects |`);
}
raw.close();
const miss = perOp(() => void s.lookup({ origin: 'http://127.0.0.1:1', method: 'GET', path: '/nothing', headers: {} }));
rows.push(`| lookup, miss (the URL's presence counter is 0: no SELECT) | ${miss.us.toFixed(2)} µs | ${miss.ops} lookups |`);
presence.add('http://127.0.0.1:1/nothing', 1); // as if another URL shared its counter
const missQuery = perOp(() => void s.lookup({ origin: 'http://127.0.0.1:1', method: 'GET', path: '/nothing', headers: {} }));
rows.push(`| lookup, miss that runs the SELECT (counter shared with a stored URL) | ${missQuery.us.toFixed(1)} µs | ${missQuery.ops} lookups |`);
let n = 0;
const t0 = performance.now();
while (performance.now() - t0 < ms) await put(s, `/w/${n++}`, 1024);
rows.push(`| store a 1 KiB object (one transaction) | ${(((performance.now() - t0) * 1000) / n).toFixed(1)} µs | ${n} writes, 1 thread |`);

// Several threads writing one file: without a busy timeout (as undici's SqliteCacheStore opens it) and with.
async function contend(timeout: number): Promise<{ ok: number; locked: number }> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(workerData.file, { timeout: workerData.timeout });
    db.exec('PRAGMA journal_mode = WAL');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    let ok = 0, locked = 0;
    const end = Date.now() + workerData.ms;
    while (Date.now() < end) {
      try { db.exec('BEGIN IMMEDIATE'); insert.run(Buffer.alloc(1024)); db.exec('COMMIT'); ok++; }
      catch (e) { if (/locked|busy/i.test(e.message)) locked++; else throw e; try { db.exec('ROLLBACK'); } catch {} }
    }
    parentPort.postMessage({ ok, locked });`;
  const file = join(dir, `contend-${timeout}.sqlite`);
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (v BLOB)');
  db.close();
  const results = await Promise.all(
    Array.from({ length: threads }, () => new Promise<{ ok: number; locked: number }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { file, timeout, ms } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  );
  return results.reduce((a, b) => ({ ok: a.ok + b.ok, locked: a.locked + b.locked }), { ok: 0, locked: 0 });
}
for (const timeout of [0, 2000]) {
  const r = await contend(timeout);
  rows.push(`| ${threads} threads writing 1 KiB rows, busy timeout ${timeout} ms | ${((ms * 1000 * threads) / Math.max(1, r.ok)).toFixed(1)} µs per write per thread | ${r.ok} committed, ${r.locked} failed "database is locked" |`);
}
rmSync(dir, { recursive: true, force: true });
console.log(`\n${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} cores · Node.js ${process.versions.node} · SQLite in ${dir.startsWith('/dev/shm') ? '/dev/shm (tmpfs)' : os.tmpdir()}\n`);
console.log(rows.join('\n'));
