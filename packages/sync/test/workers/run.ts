// Test helper: start real worker threads on a worker file and collect what each posts back.
import { Worker } from 'node:worker_threads';

export interface WorkerRun<T> {
  results: T[];
}

/** Start `count` workers of `file` with `data(i)`, resolve with every worker's single message. */
export async function runWorkers<T>(file: URL, count: number, data: (i: number) => unknown, timeoutMs = 60_000): Promise<T[]> {
  const workers = Array.from({ length: count }, (_, i) => new Worker(file, { workerData: data(i) }));
  const timer = setTimeout(() => {
    for (const w of workers) void w.terminate();
  }, timeoutMs);
  try {
    return await Promise.all(
      workers.map(
        (w, i) =>
          new Promise<T>((resolve, reject) => {
            let result: T | undefined;
            let got = false;
            w.once('message', (m: T) => {
              result = m;
              got = true;
            });
            w.once('error', reject);
            w.once('exit', (code) => {
              if (got && code === 0) resolve(result as T);
              else reject(new Error(`worker ${i} of ${file.pathname} exited with ${code} without a result (timeout ${timeoutMs} ms?)`));
            });
          }),
      ),
    );
  } finally {
    clearTimeout(timer);
  }
}

/** A start line: workers block on it until the test opens it, so that they really run at once. */
export class StartGate {
  readonly words: Int32Array;
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.words = new Int32Array(buffer);
  }
  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }
  /** In a worker: say "ready", then block until the gate opens. */
  arriveAndWait(): void {
    Atomics.add(this.words, 1, 1);
    Atomics.notify(this.words, 1);
    Atomics.wait(this.words, 0, 0, 30_000);
  }
  /** In the test: wait (without blocking) until n workers are ready, then open the gate. */
  async openWhenReady(n: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let seen = Atomics.load(this.words, 1); seen < n; seen = Atomics.load(this.words, 1)) {
      if (Date.now() > deadline) throw new Error(`only ${seen} of ${n} workers reached the start gate`);
      const w = Atomics.waitAsync(this.words, 1, seen, 1000);
      if (w.async) await w.value;
    }
    Atomics.store(this.words, 0, 1);
    Atomics.notify(this.words, 0);
  }
}
