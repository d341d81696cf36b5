/**
 * WorkerTable — one row of Int32 words per serving thread, in shared memory, for the dashboard and
 * /metrics: [threadId, open connections, event-loop delay p99 in µs, served total, open tunnels]. A
 * thread claims a row when it starts (Atomics.add on the row counter; a replacement after a crash takes
 * a new row) and updates it with Atomics; the primary reads it without a lock. Row 0 is the primary
 * itself. A thread that dies cannot count down what it held: the primary retires its row (retire()),
 * taking its connections and tunnels out with one Atomics.exchange each, so they are subtracted once.
 *
 * The event-loop delay is how late a timer fires: monitorEventLoopDelay({ resolution: 20 }) arms a
 * 20 ms repeating timer (in C++, no JS runs) and records the time between two firings — the 20 ms
 * interval itself plus the lateness. Measured on Node 24.21, idle loop: p50 20.1 ms, p99 20.2–22.9 ms;
 * a loop blocked 500 ms: one sample of ~520 ms. So the table stores p99 minus the resolution (clamped
 * at 0): an idle thread reads ~0.1–3 ms (7–15 ms on this shared 2-core host at load 19: a thread
 * waiting for a CPU is late too), a blocked one the time it was blocked. (A fraction such as
 * performance.eventLoopUtilization() would say how busy, not how late: a thread 100% busy with many
 * short callbacks serves promptly, one 300 ms callback does not; delay is what a client waits.)
 *
 * Once a second the p99 is published and the histogram reset, and reset() also forgets the delay
 * timer's last firing: the next firing only notes the time. Two blocks vanished that way (each shown by
 * event-loop-delay.test.ts, measured on Node 24.21 with 300–500 ms blocks):
 * - a block that ends with the 1 s tick and the delay timer both due, the tick run first: read in the
 *   tick (or in setImmediate, the same loop turn) the window showed ~15 ms, not 514 ms. So the tick
 *   reads one timer turn later (setTimeout 0), when the delay timer, due earlier, has fired;
 * - a block that starts after the reset and before the delay timer's first firing (up to 20 ms each
 *   second, ~2% of blocks): read 12–38 ms. So a one-shot timer set at the reset, due one interval later,
 *   measures its own lateness; it joins the p99 by max(): with ~50 firings a second the 99th percentile
 *   is the largest sample anyway.
 * Cost, idle, on this 2-core host under load ~12: the delay timer 1.9–3.4 ms of CPU a second per
 * thread; a JS setInterval sampling every 20 ms instead (no reset problem) 5.6–6.2 ms; the two extra
 * timers a second here, noise.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';

const ROWS = 64;
/** The delay timer's interval, ms: 50 wake-ups a second per thread; subtracted from what it records. */
const RESOLUTION_MS = 20;
const WORDS = 5;
const THREAD = 0;
const CONNECTIONS = 1;
const LOOP_DELAY_US = 2;
const SERVED = 3;
const TUNNELS = 4;
/** The THREAD word of a row whose thread has died and been retired. */
const RETIRED = -1;

export interface WorkerRow {
  slot: number;
  threadId: number;
  connections: number;
  loopDelayP99Ms: number;
  served: number;
}

export class WorkerTable {
  readonly buffer: SharedArrayBuffer;
  readonly #words: Int32Array;
  /** The row this thread claimed (each thread attaches its own WorkerTable), or -1. */
  #mine = -1;

  static create(): WorkerTable {
    return new WorkerTable(new SharedArrayBuffer((1 + ROWS * WORDS) * 4));
  }

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer);
  }

  /** This thread takes a row and starts sampling its event-loop delay into it. */
  claim(): number {
    const slot = Atomics.add(this.#words, 0, 1) % ROWS;
    const base = 1 + slot * WORDS;
    Atomics.store(this.#words, base + THREAD, threadId);
    Atomics.store(this.#words, base + CONNECTIONS, 0);
    Atomics.store(this.#words, base + TUNNELS, 0);
    new LoopDelaySampler(this.#words, base + LOOP_DELAY_US).start();
    this.#mine = slot;
    return slot;
  }

  /** This thread's open tunnels went up or down (Stats "tunnels" is the sum, kept beside it). */
  addTunnels(delta: number): void {
    if (this.#mine >= 0) Atomics.add(this.#words, 1 + this.#mine * WORDS + TUNNELS, delta);
  }

  /**
   * Primary: retire the rows of threads that are gone (claimed by a thread not in `live`, other than the
   * caller's own), and say how many tunnels and connections they still counted.
   */
  retire(live: ReadonlySet<number>): { tunnels: number; connections: number } {
    const claimed = Math.min(ROWS, Atomics.load(this.#words, 0));
    let tunnels = 0;
    let connections = 0;
    for (let slot = 0; slot < claimed; slot++) {
      const base = 1 + slot * WORDS;
      const thread = Atomics.load(this.#words, base + THREAD);
      if (thread === RETIRED || thread === threadId || live.has(thread)) continue;
      Atomics.store(this.#words, base + THREAD, RETIRED);
      tunnels += Atomics.exchange(this.#words, base + TUNNELS, 0);
      connections += Atomics.exchange(this.#words, base + CONNECTIONS, 0);
    }
    return { tunnels, connections };
  }

  addConnections(slot: number, delta: number): void {
    if (slot < 0) return;
    const base = 1 + slot * WORDS;
    Atomics.add(this.#words, base + CONNECTIONS, delta);
    if (delta > 0) Atomics.add(this.#words, base + SERVED, delta);
  }

  rows(): WorkerRow[] {
    const claimed = Math.min(ROWS, Atomics.load(this.#words, 0));
    const out: WorkerRow[] = [];
    for (let slot = 0; slot < claimed; slot++) {
      const base = 1 + slot * WORDS;
      if (Atomics.load(this.#words, base + THREAD) === RETIRED) continue; // a thread that died
      out.push({
        slot,
        threadId: Atomics.load(this.#words, base + THREAD),
        connections: Atomics.load(this.#words, base + CONNECTIONS),
        loopDelayP99Ms: Atomics.load(this.#words, base + LOOP_DELAY_US) / 1000,
        served: Atomics.load(this.#words, base + SERVED),
      });
    }
    return out;
  }
}

/** One thread's event-loop delay, published once a second into one word of the table (µs). */
class LoopDelaySampler {
  readonly #histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #words: Int32Array;
  readonly #index: number;
  /** When the window began (the last reset), and how late its one-shot check fired, ms. */
  #windowStart = 0;
  #checkLateMs = 0;

  constructor(words: Int32Array, index: number) {
    this.#words = words;
    this.#index = index;
  }

  start(): void {
    this.#histogram.enable();
    this.#beginWindow();
    setInterval(() => setTimeout(() => this.#publish(), 0).unref(), 1000).unref();
  }

  #beginWindow(): void {
    this.#histogram.reset();
    this.#windowStart = performance.now();
    this.#checkLateMs = 0;
    setTimeout(() => this.#check(), RESOLUTION_MS).unref();
  }

  /** The firing reset() forgot: a timer due one interval after the reset, how late it came. */
  #check(): void {
    this.#checkLateMs = performance.now() - this.#windowStart - RESOLUTION_MS;
  }

  #publish(): void {
    const firings = this.#histogram.count === 0 ? 0 : this.#histogram.percentile(99) / 1e6 - RESOLUTION_MS;
    const lateMs = Math.max(0, firings, this.#checkLateMs);
    Atomics.store(this.#words, this.#index, Math.min(2 ** 31 - 1, Math.round(lateMs * 1000)));
    this.#beginWindow();
  }
}
