/**
 * WorkerTable — one row of Int32 words per serving thread, in shared memory, for the dashboard and
 * /metrics: [threadId, open connections, event-loop delay p99 in µs, served total]. A thread claims a
 * row when it starts (Atomics.add on the row counter; a replacement after a crash takes a new row) and
 * updates it with Atomics; the primary reads it without a lock. Row 0 is the primary itself.
 *
 * The event-loop delay is how late a timer fires: monitorEventLoopDelay({ resolution: 20 }) arms a
 * 20 ms repeating timer (in C++, no JS runs) and records the time between two firings — the 20 ms
 * interval itself plus the lateness. Measured on Node 24.21, idle loop: p50 20.1 ms, p99 20.2–22.9 ms;
 * a loop blocked 500 ms: one sample of ~520 ms. So the table stores p99 minus the resolution (clamped
 * at 0): an idle thread reads ~0.1–3 ms, a blocked one the time it was blocked. (A fraction such as
 * performance.eventLoopUtilization() would say how busy, not how late: a thread 100% busy with many
 * short callbacks serves promptly, one 300 ms callback does not; delay is what a client waits.)
 *
 * The histogram is read and reset one timer turn after the 1 s tick (setTimeout 0), not in the tick:
 * reset() also forgets the last firing, so when a block ends with the tick and the delay timer both
 * due and the tick runs first, the block was lost. Measured with a 500 ms block inside the tick: read
 * in the tick (or in setImmediate, same loop turn), the window showed no block; read after setTimeout
 * 0, it showed 514 ms — by then the delay timer, due earlier, has fired and recorded it.
 */
import { monitorEventLoopDelay, type Histogram } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';

const ROWS = 64;
/** The delay timer's interval, ms: 50 wake-ups a second per thread; subtracted from what it records. */
const RESOLUTION_MS = 20;
const WORDS = 4;
const THREAD = 0;
const CONNECTIONS = 1;
const LOOP_DELAY_US = 2;
const SERVED = 3;

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
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    histogram.enable();
    const words = this.#words;
    function publish(): void {
      Atomics.store(words, base + LOOP_DELAY_US, loopDelayMicros(histogram));
      histogram.reset();
    }
    const timer = setInterval(() => setTimeout(publish, 0).unref(), 1000);
    timer.unref();
    return slot;
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

/** p99 of the last window's timer firings, less the interval the timer was asked for: µs late. */
function loopDelayMicros(histogram: Histogram): number {
  if (histogram.count === 0) return 0;
  const lateNs = histogram.percentile(99) - RESOLUTION_MS * 1e6;
  return Math.min(2 ** 31 - 1, Math.max(0, Math.round(lateNs / 1000)));
}
