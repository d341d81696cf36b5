/**
 * Benchmark of @proxyd/sync (not a test): cost per operation of Mutex lock/unlock and Semaphore
 * acquire/release, uncontended (1 thread) and contended (2 and 4 threads), and LogRing records/s with
 * 1 and 4 producers and one consumer. Run on an otherwise idle machine; numbers move from run to run.
 *
 *     pnpm bench:sync [--ms 1000]
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { Mutex } from '@proxyd/sync/mutex';
import { Semaphore } from '@proxyd/sync/semaphore';
import { LogRing } from '@proxyd/sync/log-ring';

type Kind = 'mutex' | 'semaphore' | 'ring-producer' | 'ring-consumer';
interface Job {
  kind: Kind;
  buffer: SharedArrayBuffer;
  gate: SharedArrayBuffer; // [go, ready, stop]
  ms: number;
}

function runJob({ kind, buffer, gate, ms }: Job): { ops: number; elapsedMs: number } {
  const g = new Int32Array(gate);
  Atomics.add(g, 1, 1);
  Atomics.notify(g, 1);
  Atomics.wait(g, 0, 0);
  let ops = 0;
  const start = performance.now();
  const end = start + ms;
  if (kind === 'mutex') {
    const m = new Mutex(buffer);
    const shared = new Int32Array(new SharedArrayBuffer(4));
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) {
        m.lock();
        shared[0]!++;
        m.unlock();
      }
      ops += 1000;
    }
  } else if (kind === 'semaphore') {
    const s = new Semaphore(buffer);
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) {
        s.acquire();
        s.release();
      }
      ops += 1000;
    }
  } else if (kind === 'ring-producer') {
    const ring = new LogRing(buffer);
    const record = new TextEncoder().encode(JSON.stringify({ t: Date.now(), ev: 'request', client: '127.0.0.1', method: 'GET', url: 'http://127.0.0.1:8080/1k', status: 200, up: 120, down: 1024, ms: 0.8 }));
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) ring.write(record);
      ops += 1000;
    }
    Atomics.store(g, 2, Atomics.load(g, 2) + 1);
  } else {
    // The consumer stops once every producer is done (gate[2] counts them) and the ring is empty.
    const ring = new LogRing(buffer);
    for (;;) {
      ops += ring.drain(() => {});
      if (Atomics.load(g, 2) === Atomics.load(g, 3) && ring.usedBytes === 0) break;
      ring.waitForRecordsSync(5);
    }
  }
  return { ops, elapsedMs: performance.now() - start };
}

if (!isMainThread) {
  parentPort!.postMessage(runJob(workerData as Job));
} else {
  const { values } = parseArgs({ options: { ms: { type: 'string', default: '1000' } } });
  const ms = Number(values.ms);
  if (!Number.isFinite(ms) || ms < 50) {
    console.error(`bench:sync: --ms must be a number ≥ 50, got "${values.ms}"`);
    process.exit(2);
  }

  async function run(jobs: Omit<Job, 'gate' | 'ms'>[], producers = 0) {
    const gate = new SharedArrayBuffer(16);
    const g = new Int32Array(gate);
    g[3] = producers;
    const results = jobs.map(
      (job) =>
        new Promise<{ ops: number; elapsedMs: number }>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: { ...job, gate, ms } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    while (Atomics.load(g, 1) < jobs.length) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(g, 0, 1);
    Atomics.notify(g, 0);
    return Promise.all(results);
  }

  const rows: string[][] = [];
  for (const threads of [1, 2, 4]) {
    const mutex = new Mutex();
    const r = await run(Array.from({ length: threads }, () => ({ kind: 'mutex' as const, buffer: mutex.buffer })));
    const ops = r.reduce((n, x) => n + x.ops, 0);
    const wall = Math.max(...r.map((x) => x.elapsedMs));
    rows.push([`Mutex lock+unlock`, String(threads), `${((wall * 1e6) / ops).toFixed(0)} ns`, `${(ops / wall / 1000).toFixed(2)} M/s`, `contended ${mutex.contention}`]);
  }
  for (const threads of [1, 2, 4]) {
    const sem = Semaphore.create({ permits: 1, maxWaiting: 64 });
    const r = await run(Array.from({ length: threads }, () => ({ kind: 'semaphore' as const, buffer: sem.buffer })));
    const ops = r.reduce((n, x) => n + x.ops, 0);
    const wall = Math.max(...r.map((x) => x.elapsedMs));
    rows.push([`Semaphore(1) acquire+release`, String(threads), `${((wall * 1e6) / ops).toFixed(0)} ns`, `${(ops / wall / 1000).toFixed(2)} M/s`, '']);
  }
  for (const producers of [1, 4]) {
    const ring = LogRing.create(1 << 20);
    const jobs = [
      { kind: 'ring-consumer' as const, buffer: ring.buffer },
      ...Array.from({ length: producers }, () => ({ kind: 'ring-producer' as const, buffer: ring.buffer })),
    ];
    const [consumer] = await run(jobs, producers);
    const wall = consumer!.elapsedMs;
    rows.push([`LogRing write→drain (~150 B records)`, `${producers}+1`, `${((wall * 1e6) / consumer!.ops).toFixed(0)} ns`, `${(consumer!.ops / wall / 1000).toFixed(2)} M rec/s`, `dropped ${ring.dropped} of ${ring.dropped + ring.written}`]);
  }

  const header = ['operation', 'threads', 'per op (wall)', 'throughput', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`Node.js ${process.versions.node}, ${ms} ms per row\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}
