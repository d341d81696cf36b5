/**
 * What the shared cache may hold, and when a URL's entries last changed, in shared memory: two tables
 * of 32-bit words indexed by a hash of the URL.
 *
 * Counters (a counting Bloom filter with one hash). A writer adds 1 when it inserts an entry's row
 * (complete or not yet) and subtracts 1 when it deletes one (Atomics.add / Atomics.sub); a reader that
 * finds its URL's counter at 0 knows nothing is stored under it and skips the SELECT — the common case
 * for answers that may not be stored, so the miss path costs a few nanoseconds instead of a query, and
 * a delete (undici asks for one after every answer that may not be stored) skips its write transaction.
 *
 * Generations. A writer adds 1 to the URL's generation after each committed transaction that changed
 * which entry is current for it (a new entry, a purge, an invalidation, a replacement, an eviction).
 * A thread that remembers what the store answered for a URL (shared-store.ts) remembers the generation
 * it read *before* asking; while the generation is unchanged, nothing committed since then touched
 * the URL, and the remembered answer is the store's answer. Bumping only after COMMIT matters: a reader
 * that saw the new generation before the commit would query the old state and remember it as new.
 *
 * Hints, never answers. A counter too high (two URLs share it, or a writer died between its add and
 * its commit) costs a SELECT that finds nothing; a generation shared with other URLs changes more often
 * than this URL does, which costs a SELECT too. A counter or generation read a moment before a commit
 * lands gives the answer the store itself gave a moment earlier. Bodies only ever come from the store.
 */
import { hashHalves } from '@proxyd/sync/key-table';

export const PRESENCE_COUNTERS = 1 << 16;

export class UrlPresence {
  readonly #counters: Int32Array;
  readonly #generations: Int32Array;

  static create(): UrlPresence {
    return new UrlPresence(new SharedArrayBuffer(PRESENCE_COUNTERS * 4 * 2));
  }

  constructor(buffer: SharedArrayBuffer) {
    this.#counters = new Int32Array(buffer, 0, PRESENCE_COUNTERS);
    this.#generations = new Int32Array(buffer, PRESENCE_COUNTERS * 4, PRESENCE_COUNTERS);
  }

  get buffer(): SharedArrayBuffer {
    return this.#counters.buffer as SharedArrayBuffer;
  }

  /** False: nothing is stored under `url` now. True: something may be. */
  mayHave(url: string): boolean {
    return Atomics.load(this.#counters, indexOf(url)) > 0;
  }

  /** An entry row of `url` was inserted (+1) or deleted (−1). */
  add(url: string, n: number): void {
    Atomics.add(this.#counters, indexOf(url), n);
  }

  /** `url`'s generation: read it before asking the store, compare it later (see the top of the file). */
  generation(url: string): number {
    return Atomics.load(this.#generations, indexOf(url));
  }

  /** A committed change to `url`'s entries: call after COMMIT, never before. */
  changed(url: string): void {
    Atomics.add(this.#generations, indexOf(url), 1);
  }
}

/** The URL's 64-bit hash (KeyTable's) as two 32-bit words, e.g. for the in-flight table's key. */
export function urlHash(url: string): [number, number] {
  hashOf(url);
  return [HALVES[0]! | 0, HALVES[1]! | 0];
}

// KeyTable's hash as numbers (no BigInt on this path). A request asks about one URL several times in a
// row (presence, generation, in-flight): it is hashed once.
const HALVES = new Uint32Array(2);
let lastUrl = '';
function hashOf(url: string): void {
  if (url === lastUrl) return;
  hashHalves(url, HALVES);
  lastUrl = url;
}

function indexOf(url: string): number {
  hashOf(url);
  return HALVES[1]! & (PRESENCE_COUNTERS - 1);
}
