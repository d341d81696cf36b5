/**
 * Parent proxies' health and load, in shared memory: one SharedArrayBuffer that every serving thread
 * (and the admin server, for /metrics) attaches, so that a parent marked down by one worker is down for
 * all of them at once, and "least connections" counts the connections of every thread.
 *
 * Layout (Int32 words, then one BigInt64 word per parent):
 *
 *   word 0                 round-robin ticket: Atomics.add(…, 1) hands each pick its own number
 *   per parent p, 8 words from HEADER + p·STRIDE:
 *     STATE     UP (0) or DOWN (1)
 *     FAILS     consecutive failed connects (a success stores 0)
 *     ACTIVE    connections to the parent in use now (gauge: +1 when dialled/dispatched, −1 when done)
 *     REQUESTS  requests and tunnels sent through it
 *     FAILURES  failed connects and timeouts, all told
 *     SELECTED  times the selection picked it first
 *     DOWNS     times it was marked down
 *   retryAt[p] (BigInt64, ms since the epoch): when a DOWN parent may be tried again
 *
 * The state machine, and why each step is safe without a lock:
 *
 *   UP ──(FAILS reaches --parent-down-after)──▶ DOWN ──(a trial connect succeeds)──▶ UP
 *                                               │  ▲
 *                                               └──┘ a trial fails: wait --parent-retry again
 *
 * - Mark down: the failing thread first stores retryAt = now + retry, then CAS STATE UP→DOWN. Every
 *   Atomics operation is sequentially consistent, so a thread that sees DOWN also sees that retryAt.
 *   Several threads may fail at once; exactly one CAS wins, and only the winner counts and logs the
 *   transition ("parent-down" is logged once, not once per thread).
 * - The trial (the circuit breaker's half-open step): while DOWN, a thread that finds retryAt in the past
 *   tries to CAS retryAt from the value it read to now + retry. Exactly one thread wins that CAS per
 *   period, so a down parent receives one trial connection per --parent-retry however many threads and
 *   requests want it; the others skip it at once. No TRIAL state is kept: should the thread holding the
 *   trial die, the next period simply offers another.
 * - Mark up: any success stores FAILS = 0 and CAS DOWN→UP; the winner logs "parent-up".
 * - Counters and the gauge are Atomics.add; a reader (metrics, least-conn) may see a value a moment
 *   old, never a torn one.
 */
const HEADER = 4;
const STRIDE = 8;
const STATE = 0;
const FAILS = 1;
const ACTIVE = 2;
const REQUESTS = 3;
const FAILURES = 4;
const SELECTED = 5;
const DOWNS = 6;

export const UP = 0;
export const DOWN = 1;

export interface ParentReading {
  up: boolean;
  active: number;
  requests: number;
  failures: number;
  selected: number;
  downs: number;
}

export class ParentTable {
  readonly buffer: SharedArrayBuffer;
  readonly count: number;
  private readonly words: Int32Array;
  private readonly retryAt: BigInt64Array;

  static create(count: number): ParentTable {
    const intBytes = (HEADER + count * STRIDE) * 4; // a multiple of 8: HEADER and STRIDE are even
    return new ParentTable(new SharedArrayBuffer(intBytes + count * 8), count);
  }

  /** How many parents a table's buffer holds (the size says it: HEADER + 8 words + 2 words each). */
  static countIn(buffer: SharedArrayBuffer): number {
    return (buffer.byteLength / 4 - HEADER) / (STRIDE + 2);
  }

  constructor(buffer: SharedArrayBuffer, count: number) {
    this.buffer = buffer;
    this.count = count;
    const intWords = HEADER + count * STRIDE;
    this.words = new Int32Array(buffer, 0, intWords);
    this.retryAt = new BigInt64Array(buffer, intWords * 4, count);
  }

  private at(p: number, field: number): number {
    return HEADER + p * STRIDE + field;
  }

  /** The next round-robin number (wraps at 2^31; callers take it modulo their schedule). */
  ticket(): number {
    return Atomics.add(this.words, 0, 1) & 0x7fffffff;
  }

  isUp(p: number): boolean {
    return Atomics.load(this.words, this.at(p, STATE)) === UP;
  }

  active(p: number): number {
    return Atomics.load(this.words, this.at(p, ACTIVE));
  }

  /**
   * May this thread use parent p now? Yes when it is up; when it is down, yes for exactly one caller
   * per retry period (the trial: CAS on retryAt, see the top of this file).
   */
  admit(p: number, now: number, retryMs: number): boolean {
    if (this.isUp(p)) return true;
    const seen = Atomics.load(this.retryAt, p);
    if (BigInt(now) < seen) return false;
    return Atomics.compareExchange(this.retryAt, p, seen, BigInt(now + retryMs)) === seen;
  }

  /** It was picked first by the selection. */
  selected(p: number): void {
    Atomics.add(this.words, this.at(p, SELECTED), 1);
  }

  /** A connection (or request) to p starts: count it and hold it in the active gauge. */
  begin(p: number): void {
    Atomics.add(this.words, this.at(p, REQUESTS), 1);
    Atomics.add(this.words, this.at(p, ACTIVE), 1);
  }

  /** …and ends (exactly once per begin). */
  end(p: number): void {
    Atomics.sub(this.words, this.at(p, ACTIVE), 1);
  }

  /** The parent answered: its failure streak ends. True if this call brought it back up. */
  succeeded(p: number): boolean {
    if (Atomics.load(this.words, this.at(p, FAILS)) !== 0) Atomics.store(this.words, this.at(p, FAILS), 0);
    return this.isUp(p) ? false : Atomics.compareExchange(this.words, this.at(p, STATE), DOWN, UP) === DOWN;
  }

  /** A connect to p failed or timed out. True if this call marked it down (the caller logs that). */
  failed(p: number, now: number, o: { downAfter: number; retryMs: number }): boolean {
    Atomics.add(this.words, this.at(p, FAILURES), 1);
    const streak = Atomics.add(this.words, this.at(p, FAILS), 1) + 1;
    if (streak < o.downAfter || !this.isUp(p)) return false;
    Atomics.store(this.retryAt, p, BigInt(now + o.retryMs)); // before the state: whoever sees DOWN sees it
    if (Atomics.compareExchange(this.words, this.at(p, STATE), UP, DOWN) !== UP) return false;
    Atomics.add(this.words, this.at(p, DOWNS), 1);
    return true;
  }

  read(p: number): ParentReading {
    const w = (f: number): number => Atomics.load(this.words, this.at(p, f)) >>> 0;
    return { up: w(STATE) === UP, active: Atomics.load(this.words, this.at(p, ACTIVE)), requests: w(REQUESTS), failures: w(FAILURES), selected: w(SELECTED), downs: w(DOWNS) };
  }
}
