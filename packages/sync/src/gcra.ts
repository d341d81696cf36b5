/**
 * Gcra — a rate limit kept in one 64-bit word per key, updated by compare-and-swap from any thread: the
 * Generic Cell Rate Algorithm of ATM networks (ITU-T I.371), as Rust's `governor` keeps it in an
 * AtomicU64.
 *
 * A token bucket needs two numbers (tokens, last refill) that must change together — a lock, or two
 * words that can tear. GCRA needs one: the *theoretical arrival time* (TAT), the moment at which the key
 * would be exactly back to "no burst used" if it stopped now. With
 *
 *     T   = the emission interval (1 s / rate): how far each admitted request pushes the TAT
 *     τ   = T × (burst − 1): how far ahead of now the TAT may run (the burst tolerance)
 *
 * a request at time `now` is
 *
 *     start = max(TAT, now)
 *     start − now > τ  →  refused; it would be allowed in (start − now − τ)
 *     otherwise        →  admitted, and TAT becomes start + T
 *
 * A fresh key (TAT 0) admits `burst` requests at once, then one every T. Nothing ever needs refilling:
 * idle time is measured by how far `now` has overtaken the TAT.
 *
 * The update is a read-modify-write, so from several threads it must be one atomic step:
 *
 *     tat = Atomics.load(word)
 *     loop:
 *       decide from tat (above); refused → return, having written nothing
 *       seen = Atomics.compareExchange(word, tat, start + T)
 *       seen === tat → admitted: our TAT is the one in the word
 *       otherwise    → another thread admitted a request in between: tat = seen, decide again (a retry)
 *
 * Why no admission is lost or doubled: the CAS writes only if the word still holds the TAT we decided on;
 * if another thread moved it, our decision is stale and we redo it from the value that thread wrote.
 * Every admitted request therefore advanced the TAT by exactly T from the TAT it saw, and with the clock
 * held still exactly `burst` requests pass (the thread test: four threads, one key, 4 × 50,000 attempts,
 * admitted === burst). A plain load / compute / store — the same code without the CAS — lets two threads
 * decide on one TAT and both store: the test shows it admitting more than the limit.
 *
 * Retries are counted (`retries`, per instance, so per thread: the caller adds them to shared stats):
 * each is one lost race, and their rate says how hot the hottest key is.
 *
 * Times are BigInt nanoseconds, from the caller — any clock every thread shares (proxyd uses
 * process.hrtime.bigint(), the monotonic clock: no conversion, and no jump when the wall clock is set).
 * Gcra reads no clock itself (tests freeze time), and the word is a BigInt64Array element — any of them, so many limits can live side by side in one array (a
 * KeyTable's words). 0 is "never used".
 */

export interface GcraRate {
  /** T: nanoseconds each admitted request costs. */
  readonly intervalNs: bigint;
  /** τ = T × (burst − 1): how far ahead of now the TAT may run. */
  readonly toleranceNs: bigint;
  readonly burst: number;
}

/** A rate of `perSecond` (may be fractional: 0.5 = one every two seconds) with `burst` at once. */
export function gcraRate(perSecond: number, burst: number): GcraRate {
  if (!(perSecond > 0)) throw new RangeError(`gcraRate: perSecond must be > 0, got ${perSecond}`);
  if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`gcraRate: burst must be a whole number ≥ 1, got ${burst}`);
  const intervalNs = BigInt(Math.max(1, Math.round(1e9 / perSecond)));
  return { intervalNs, toleranceNs: intervalNs * BigInt(burst - 1), burst };
}

export class Gcra {
  readonly words: BigInt64Array;
  /** CAS retries made through this instance (this thread): one per lost race. */
  retries = 0;

  constructor(words: BigInt64Array) {
    this.words = words;
  }

  /**
   * One request for the key whose TAT is words[index], at `now` (ns). Returns 0n when admitted, otherwise
   * the nanoseconds until a request would be admitted (for Retry-After).
   */
  take(index: number, now: bigint, rate: GcraRate): bigint {
    let tat = Atomics.load(this.words, index);
    for (;;) {
      const start = tat > now ? tat : now;
      const ahead = start - now;
      if (ahead > rate.toleranceNs) return ahead - rate.toleranceNs; // refused: nothing written
      const seen = Atomics.compareExchange(this.words, index, tat, start + rate.intervalNs);
      if (seen === tat) return 0n; // the word held what we decided on: admitted
      tat = seen; // another thread moved it: decide again from its value
      this.retries++;
    }
  }

  /** Requests the key could make at once now (0 … burst): for display. */
  available(index: number, now: bigint, rate: GcraRate): number {
    const tat = Atomics.load(this.words, index);
    const ahead = tat > now ? tat - now : 0n;
    const left = (rate.toleranceNs - ahead) / rate.intervalNs + 1n;
    return left < 0n ? 0 : Math.min(rate.burst, Number(left));
  }
}
