/**
 * WorkerTable — one row of Int32 words per serving thread, in shared memory, for the dashboard and
 * /metrics: [threadId, open connections, event-loop delay p99 in µs, served total]. A thread claims a
 * row when it starts (Atomics.add on the row counter; a replacement after a crash takes a new row) and
 * updates it with Atomics; the primary reads it without a lock. Row 0 is the primary itself.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { threadId } from 'node:worker_threads';

const ROWS = 64;
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
    const histogram = monitorEventLoopDelay({ resolution: 20 });
    histogram.enable();
    const timer = setInterval(() => {
      Atomics.store(this.#words, base + LOOP_DELAY_US, Math.min(2 ** 31 - 1, Math.round(histogram.percentile(99) / 1000)));
      histogram.reset();
    }, 1000);
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
