/**
 * Watch a counting semaphore work: N worker threads share K permits. Each thread repeatedly asks for a
 * permit (blocking Atomics.wait while none is free), holds it for a moment, and gives it back. Every
 * change prints one line: which thread, what it did, and how many hold / wait right after.
 *
 *     pnpm demo:semaphore [--threads 6] [--permits 2] [--rounds 3] [--hold-ms 300]
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { Semaphore } from '@proxyd/sync/semaphore';

interface Event {
  thread: number;
  action: 'waits' | 'acquires' | 'releases' | 'done';
  held: number;
  waiting: number;
  at: number;
}

if (isMainThread) {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '6' },
      permits: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      'hold-ms': { type: 'string', default: '300' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('usage: pnpm demo:semaphore [--threads N=6] [--permits K=2] [--rounds R=3] [--hold-ms MS=300]');
    process.exit(0);
  }
  const num = (name: keyof typeof values, min: number, max: number): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`demo:semaphore: --${name} must be a whole number from ${min} to ${max}, got "${values[name]}"`);
      process.exit(2);
    }
    return n;
  };
  const threads = num('threads', 1, 64);
  const permits = num('permits', 1, 64);
  const rounds = num('rounds', 1, 100);
  const holdMs = num('hold-ms', 0, 10_000);

  const sem = Semaphore.create({ permits, maxWaiting: threads });
  const start = performance.now();
  console.log(`${threads} threads, ${permits} permits, ${rounds} rounds each, holding ${holdMs} ms\n`);
  console.log('    time  thread  action     held  waiting   permits');
  const bar = (held: number) => '■'.repeat(held) + '□'.repeat(permits - held);
  const workers = Array.from({ length: threads }, (_, thread) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { buffer: sem.buffer, thread, rounds, holdMs, start } });
    w.on('message', (e: Event) => {
      if (e.action === 'done') return;
      const t = `${(e.at / 1000).toFixed(3)}s`.padStart(8);
      console.log(`${t}  T${String(e.thread).padEnd(5)} ${e.action.padEnd(9)}  ${String(e.held).padStart(4)}  ${String(e.waiting).padStart(7)}   ${bar(e.held)}`);
    });
    return new Promise<void>((resolve, reject) => w.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`thread ${thread} exited ${c}`)))));
  });
  await Promise.all(workers);
  console.log(`\nall ${threads} threads done in ${((performance.now() - start) / 1000).toFixed(2)} s; permits free: ${sem.free}/${permits}, admitted ${sem.admittedTotal} times`);
} else {
  const { buffer, thread, rounds, holdMs, start } = workerData as { buffer: SharedArrayBuffer; thread: number; rounds: number; holdMs: number; start: number };
  const sem = new Semaphore(buffer);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  // "waits" is said just before this thread joins the queue, so it counts itself among the waiters.
  const say = (action: Event['action']) =>
    parentPort!.postMessage({
      thread,
      action,
      held: sem.held,
      waiting: sem.waiting + (action === 'waits' ? 1 : 0),
      at: performance.now() - start,
    } satisfies Event);
  const sleep = (ms: number) => Atomics.wait(nap, 0, 0, ms); // this thread may block: it has no other work
  sleep(Math.random() * holdMs);
  for (let i = 0; i < rounds; i++) {
    if (!sem.tryAcquire()) {
      say('waits');
      sem.acquire(); // blocks in Atomics.wait on this thread's ticket slot until release() admits it
    }
    say('acquires');
    sleep(holdMs * (0.5 + Math.random()));
    sem.release();
    say('releases');
    sleep(Math.random() * holdMs * 0.5);
  }
  say('done');
}
