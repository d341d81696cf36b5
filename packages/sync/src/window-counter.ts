/**
 * Sliding-window counters in shared memory: "how many in the last minute", from any thread, lock-free.
 *
 * The sliding-window approximation (as Cloudflare's rate limiter describes it): keep a count for the
 * current fixed window and for the one before, and weigh the previous one by how much of it still lies
 * inside the sliding window:
 *
 *     estimate = current + previous × (1 − elapsed fraction of the current window)
 *
 * Two buckets per counter, one for even window numbers and one for odd. A bucket is ONE BigInt64 word that
 * packs the window it counts with its count:
 *
 *     word = (window number mod 2^31) << 32  |  count (low 32 bits)
 *
 * Packing is what makes it safe without a lock. With the window and the count in two words, rolling a
 * bucket over to a new window is "set window, zero count" — two stores, and an increment by another thread
 * between them is lost (or lands in the old window). In one word, an add is a CAS loop:
 *
 *     old = Atomics.load(word)
 *     new = (old's window == this window) ? old + 1 : (this window << 32 | 1)    // roll over in the same step
 *     Atomics.compareExchange(word, old, new) — lost the race? recompute from what the winner wrote
 *
 * so every increment lands in exactly one window, and a roll-over and an increment can never interleave.
 * Reads are two Atomics.loads; a bucket whose window is neither this one nor the one before counts 0.
 *
 * DistinctWindow is the same two packed buckets holding a 32-bit set instead of a count: add(x) ORs in bit
 * (hash(x) mod 32), and the estimate of distinct items over the two windows is linear counting (Whang,
 * Vander-Zanden, Taylor 1990) on the union of both sets: n ≈ −32 · ln(1 − bits set / 32). With 32 bits it
 * is good to a few tens of distinct items, which is what it is for ("this client was refused at 20 different
 * ports this minute"); a full set estimates Infinity.
 *
 * Times are milliseconds from the caller (no clock is read here). Words are elements of any BigInt64Array:
 * a counter at `index` uses words index and index + 1 (zero = empty).
 */

const LOW32 = 0xffffffffn;
const WINDOW_MOD = 0x7fffffff;

function windowOf(nowMs: number, windowMs: number): number {
  return Math.floor(nowMs / windowMs) % WINDOW_MOD;
}

function pack(window: number, low: number): bigint {
  return (BigInt(window) << 32n) | BigInt(low >>> 0);
}

/** The low 32 bits of a bucket if it counts `window`, else 0. */
function lowIf(word: bigint, window: number): number {
  return Number(word >> 32n) === window ? Number(word & LOW32) : 0;
}

/**
 * One CAS loop on the bucket of `window`: `next(low)` gives the new low 32 bits from the current ones (0
 * when the bucket still counts an older window). Returns the new low bits.
 */
function update(words: BigInt64Array, index: number, window: number, next: (low: number) => number): number {
  const at = index + (window & 1);
  let old = Atomics.load(words, at);
  for (;;) {
    const low = next(lowIf(old, window));
    const seen = Atomics.compareExchange(words, at, old, pack(window, low));
    if (seen === old) return low;
    old = seen; // another thread added (or rolled the bucket over) first: recompute from its word
  }
}

export class WindowCounter {
  readonly words: BigInt64Array;

  constructor(words: BigInt64Array) {
    this.words = words;
  }

  /** Add `n` now; returns the sliding estimate after it. */
  add(index: number, nowMs: number, windowMs: number, n = 1): number {
    const window = windowOf(nowMs, windowMs);
    const current = update(this.words, index, window, (count) => Math.min(count + n, 0xffffffff));
    return current + this.#previous(index, nowMs, windowMs, window);
  }

  /** The sliding estimate now. */
  count(index: number, nowMs: number, windowMs: number): number {
    const window = windowOf(nowMs, windowMs);
    return lowIf(Atomics.load(this.words, index + (window & 1)), window) + this.#previous(index, nowMs, windowMs, window);
  }

  #previous(index: number, nowMs: number, windowMs: number, window: number): number {
    const before = (window + WINDOW_MOD - 1) % WINDOW_MOD;
    const count = lowIf(Atomics.load(this.words, index + (before & 1)), before);
    return count === 0 ? 0 : count * (1 - (nowMs % windowMs) / windowMs);
  }
}

export class DistinctWindow {
  readonly words: BigInt64Array;

  constructor(words: BigInt64Array) {
    this.words = words;
  }

  /** Note `item` now; returns the estimate of distinct items this window and the one before. */
  add(index: number, nowMs: number, windowMs: number, item: string): number {
    const bit = 1 << (hash32(item) & 31);
    const window = windowOf(nowMs, windowMs);
    const current = update(this.words, index, window, (set) => set | bit);
    return estimate(current | this.#previous(index, window));
  }

  /** The estimate now, without adding. */
  count(index: number, nowMs: number, windowMs: number): number {
    const window = windowOf(nowMs, windowMs);
    return estimate(lowIf(Atomics.load(this.words, index + (window & 1)), window) | this.#previous(index, window));
  }

  #previous(index: number, window: number): number {
    const before = (window + WINDOW_MOD - 1) % WINDOW_MOD;
    return lowIf(Atomics.load(this.words, index + (before & 1)), before);
  }
}

/** Linear counting on a 32-bit set. */
function estimate(set: number): number {
  let bits = 0;
  for (let s = set >>> 0; s !== 0; s &= s - 1) bits++;
  return bits === 32 ? Infinity : -32 * Math.log(1 - bits / 32);
}

function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
