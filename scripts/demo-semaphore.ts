/**
 * Watch a counting semaphore work: N worker threads share K permits. Each thread repeatedly asks for a
 * permit (blocking in Atomics.wait while none is free), holds it for a moment, and gives it back. Every
 * step prints one line: which thread, what it did, the Atomics call behind it, and how many hold / wait.
 *
 *     pnpm demo:semaphore [--threads 6] [--permits 2] [--rounds 3] [--hold-ms 300]
 *
 * Lines are printed in the order the steps happened, not the order their messages reach this thread:
 * each step takes a number from one shared counter (Atomics.add) at the moment it happens, and the main
 * thread prints step n only after steps 0 … n−1. A release takes its number *before* it calls
 * release(), and an acquire takes its number *after* acquire() returns, so a release always prints
 * before the acquire it made possible.
 *
 * The hand-off: when threads are waiting, release() does not free the permit — it passes it straight to
 * the thread at the head of the queue (its slot word goes WAITING → ADMITTED by compare-and-swap, then
 * Atomics.notify wakes exactly that thread). "held" stays the same across the pair of lines. (A release
 * is marked a hand-off when a thread has said it waits; rarely that thread has not yet joined the queue,
 * the permit comes free instead, and another thread's tryAcquire takes it: the replay corrects its
 * counts, the label stays.) How the
 * queue works: packages/sync/README.md and the top of packages/sync/src/semaphore.ts.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { Semaphore } from '@proxyd/sync/semaphore';

type Action = 'waits' | 'acquires' | 'releases' | 'done';

interface Step {
  seq: number;
  thread: number;
  action: Action;
  /** For 'acquires': whether the thread had to wait (woken by a hand-off) or got a free permit at once. */
  waited?: boolean;
  at: number;
}

/**
 * The main thread's picture of the semaphore, rebuilt from the steps in sequence order (reading the
 * live counters instead would show a later moment than the step's).
 */
class Replay {
  held = 0;
  waiting = 0;
  handOffs = 0;
  /** Permits passed on by a release and not yet reported by the thread that received them. */
  #inFlight = 0;
  readonly #permits: number;

  constructor(permits: number) {
    this.#permits = permits;
  }

  apply(s: Step): string | undefined {
    let what: string;
    let action: string = s.action;
    switch (s.action) {
      case 'done':
        return undefined;
      case 'waits':
        this.waiting++;
        what = 'no permit free: takes ticket t = nextTicket++, sleeps in Atomics.wait(slot[t], "t:WAITING")';
        break;
      case 'acquires':
        if (s.waited && this.#inFlight > 0) {
          this.#inFlight--; // counted in "held" already, by the release that handed it over
          action = 'acquires (handed)';
          what = 'woken: its slot went WAITING → ADMITTED (CAS) and Atomics.notify(slot) woke it';
        } else if (!s.waited && this.#inFlight > 0) {
          // The release before was no hand-off after all: the thread counted as waiting had numbered its
          // "waits" step but not yet joined the queue, so the permit came free and this thread took it.
          // "held" stays as the release left it; that thread waits on.
          this.#inFlight--;
          this.waiting++;
          this.handOffs--;
          what = 'tryAcquire: free-- under the mutex (one CAS), no wait';
        } else {
          if (s.waited) this.waiting--;
          this.held++;
          what = s.waited ? 'woken from Atomics.wait: admitted from the head of the queue' : 'tryAcquire: free-- under the mutex (one CAS), no wait';
        }
        break;
      case 'releases':
        if (this.waiting > 0) {
          this.waiting--;
          this.#inFlight++;
          this.handOffs++;
          action = 'releases (hand-off)';
          what = 'queue not empty: the permit goes to the head ticket, CAS WAITING → ADMITTED + Atomics.notify';
        } else {
          this.held--;
          what = 'nobody waits: free++ under the mutex';
        }
        break;
    }
    const t = `${(s.at / 1000).toFixed(3)}s`.padStart(8);
    const bar = '■'.repeat(this.held) + '□'.repeat(Math.max(0, this.#permits - this.held));
    return `${t}  T${String(s.thread).padEnd(5)} ${action.padEnd(22)}  ${String(this.held).padStart(4)}  ${String(this.waiting).padStart(7)}  ${bar.padEnd(7)}  ${what}`;
  }
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
  const sequence = new SharedArrayBuffer(4);
  // One clock for every thread: each thread's performance.now() counts from its own start.
  const now = () => performance.timeOrigin + performance.now();
  const start = now();
  console.log(`${threads} threads, ${permits} permits, ${rounds} rounds each, holding ${holdMs} ms\n`);
  console.log('    time  thread  action                  held  waiting  permits  what happened in shared memory');
  const replay = new Replay(permits);
  const pending = new Map<number, Step>();
  let next = 0;
  const workers = Array.from({ length: threads }, (_, thread) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { buffer: sem.buffer, sequence, thread, rounds, holdMs, start } });
    w.on('message', (step: Step) => {
      pending.set(step.seq, step);
      // Print every step whose predecessors have all arrived, in sequence order.
      for (let s = pending.get(next); s; s = pending.get(next)) {
        pending.delete(next++);
        const line = replay.apply(s);
        if (line) console.log(line);
      }
    });
    return new Promise<void>((resolve, reject) => w.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`thread ${thread} exited ${c}`)))));
  });
  await Promise.all(workers);
  console.log(
    `\nall ${threads} threads done in ${((now() - start) / 1000).toFixed(2)} s; permits free: ${sem.free}/${permits}, ` +
      `admitted ${sem.admittedTotal} times, ${replay.handOffs} of them by hand-off from a release.\n` +
      'A hand-off (a release while threads wait) passes the permit straight to the head of the queue, so "held"\n' +
      'does not change across it. The algorithm: packages/sync/README.md, and the top of packages/sync/src/semaphore.ts.',
  );
} else {
  const { buffer, sequence, thread, rounds, holdMs, start } = workerData as {
    buffer: SharedArrayBuffer;
    sequence: SharedArrayBuffer;
    thread: number;
    rounds: number;
    holdMs: number;
    start: number;
  };
  const sem = new Semaphore(buffer);
  const counter = new Int32Array(sequence);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  /** Number this step now, at the moment it happens, and tell the main thread. */
  const step = (action: Action, waited?: boolean) =>
    parentPort!.postMessage({ seq: Atomics.add(counter, 0, 1), thread, action, waited, at: performance.timeOrigin + performance.now() - start } satisfies Step);
  const sleep = (ms: number) => Atomics.wait(nap, 0, 0, ms); // this thread may block: it has no other work
  sleep(Math.random() * holdMs);
  for (let i = 0; i < rounds; i++) {
    if (sem.tryAcquire()) step('acquires', false);
    else {
      step('waits');
      sem.acquire(); // blocks in Atomics.wait on this thread's ticket slot until a release() admits it
      step('acquires', true);
    }
    sleep(holdMs * (0.5 + Math.random()));
    step('releases'); // numbered before release(): the waiter it wakes can only number its step after
    sem.release();
    sleep(Math.random() * holdMs * 0.5);
  }
  step('done');
}
