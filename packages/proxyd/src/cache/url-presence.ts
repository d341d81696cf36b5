/**
 * Which URLs the shared cache may hold, in shared memory: a table of counters indexed by a hash of the
 * URL (a counting Bloom filter with one hash). A writer adds 1 when it commits an entry and subtracts 1
 * when it deletes one (Atomics.add / Atomics.sub); a reader that finds its URL's counter at 0 knows
 * nothing is stored under it and skips the SELECT — the common case for answers that may not be stored,
 * so the miss path costs a few nanoseconds instead of a query.
 *
 * A hint, never an answer. A counter too high (two URLs share it, or a writer died between its add and
 * its commit) costs a SELECT that finds nothing; a counter read as 0 a moment before a commit lands, or
 * a moment after a delete began, reports a miss that the store itself would have reported a moment later.
 * Neither can serve a wrong body: bodies only ever come from the store.
 */
export const PRESENCE_COUNTERS = 1 << 16;

export class UrlPresence {
  readonly #counters: Int32Array;

  static create(): UrlPresence {
    return new UrlPresence(new SharedArrayBuffer(PRESENCE_COUNTERS * 4));
  }

  constructor(buffer: SharedArrayBuffer) {
    this.#counters = new Int32Array(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#counters.buffer as SharedArrayBuffer;
  }

  /** False: nothing is stored under `url` now. True: something may be. */
  mayHave(url: string): boolean {
    return Atomics.load(this.#counters, urlHash(url)[0] & (PRESENCE_COUNTERS - 1)) > 0;
  }

  /** An entry of `url` was stored (+1) or deleted (−1). */
  add(url: string, n: number): void {
    Atomics.add(this.#counters, urlHash(url)[0] & (PRESENCE_COUNTERS - 1), n);
  }
}

/** Two 32-bit FNV-1a hashes of a URL (different offsets): 64 bits that tell URLs apart. */
export function urlHash(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return [a | 0, b | 0];
}
