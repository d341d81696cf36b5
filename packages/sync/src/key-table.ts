/**
 * KeyTable — a fixed-size hash table in one SharedArrayBuffer that maps a text key (a client address, a
 * user name) to a slot number, from any thread, without a lock. What a slot *holds* is up to the caller:
 * each slot owns `bigWords` BigInt64 words and `intWords` Int32 words, zero when the slot is claimed, on
 * which the caller runs its own atomic algorithms (a GCRA time, sliding-window counters, a ban's expiry).
 *
 * Why fixed-size. Every client that ever sends a packet would otherwise be an entry: a table that grows
 * is a memory leak an attacker can drive. This one is allocated once (`KeyTable.bytesFor()` says how
 * much) and never grows; when it is full the *stalest* entry makes room.
 *
 * Layout (one buffer):
 *
 *     Int32   header   [slots, bigWords, intWords, nameBytes, maxProbes, claims, evictions, busyWaits]
 *     BigInt64 hash[slots]      the key's 64-bit hash; 0 = EMPTY, −1 = BUSY (being recycled)
 *     BigInt64 touched[slots]   the caller's "last used" time for that slot (eviction picks the smallest)
 *     BigInt64 big[slots × bigWords]    the caller's words
 *     Int32    int[slots × intWords]    the caller's words
 *     Uint8    name[slots × nameBytes]  the key's text (first byte: its length), for display only
 *
 * Open addressing, bounded probes. A key's home is `hash mod slots` (slots is a power of two); find()
 * looks at the home and the next maxProbes − 1 slots, no further, so a lookup costs at most maxProbes
 * loads whatever the table holds. Each probed slot's hash word is one of:
 *
 *     the key's hash  → found: this slot is the key's
 *     0 (EMPTY)       → claim it: Atomics.compareExchange(hash, 0 → h). Of any number of threads that
 *                       race for one empty slot exactly one CAS wins; a loser reads what the winner wrote.
 *                       If that is our own hash, another thread has just inserted the same key: use it.
 *                       Otherwise keep probing. So two threads inserting one key end in the same slot.
 *     −1 (BUSY)       → another thread is recycling this slot (below), a few stores long: spin (bounded)
 *                       until it shows its new hash, then judge it as above
 *     another hash    → keep probing
 *
 * The caller's words of a freshly claimed EMPTY slot are zero (the buffer starts zeroed and a slot never
 * goes back to EMPTY), and zero is every algorithm's "nothing yet" state, so a claim writes nothing but
 * the hash word: there is no window in which a half-made entry is visible.
 *
 * Eviction, when every probed slot holds another key: pick the probed slot with the smallest `touched`
 * (the stalest) and recycle it in three steps — CAS its hash old → BUSY (only one thread wins the slot;
 * a loser starts over, and may now find the key that the winner inserted), zero its words and write the
 * name, then Atomics.store(hash, h) which publishes the new entry. Readers that meet BUSY wait for that
 * store, so nobody sees the words half-cleared under the new key.
 *
 * What eviction cannot make exact, and why that is acceptable here. A thread that found slot s for key A
 * a moment ago may still be about to update s's words when another thread recycles s for key B: that one
 * update lands on B's fresh entry. It can only happen to the *stalest* entry of a full probe window — one
 * that no thread had touched for longer than every other candidate — so the thread holding it must have
 * stalled between its find() and its update; the cost is one decision credited to the wrong key. The
 * other imprecision: two threads that both miss a key in a full window may recycle two different slots
 * for it (each picked its stalest from a slightly different moment); the later-probed copy is never found
 * again and becomes the stalest. A rate limiter under a flood of new keys may forget a cold key; it never
 * loses track of a hot one, because a hot key's `touched` is always recent (the test with 100,000 keys).
 *
 * The name bytes are written with plain stores after the claim: they are for display (the dashboard's
 * hottest keys), never for finding a key, and a reader that races a recycle may see a torn name.
 */

const EMPTY = 0n;
const BUSY = -1n;

// Header words (Int32).
const H_SLOTS = 0;
const H_BIG = 1;
const H_INT = 2;
const H_NAME = 3;
const H_PROBES = 4;
const H_CLAIMS = 5;
const H_EVICTIONS = 6;
const H_BUSY_WAITS = 7;
const HEADER_WORDS = 8;
const HEADER_BYTES = HEADER_WORDS * 4; // a multiple of 8: the BigInt64 arrays that follow stay aligned

/** How many times find() re-reads a BUSY hash word before it treats the slot as another key's. */
const BUSY_SPINS = 100_000;

export interface KeyTableShape {
  /** Slots: a power of two. */
  slots: number;
  /** BigInt64 words each slot holds for the caller. */
  bigWords: number;
  /** Int32 words each slot holds for the caller. */
  intWords: number;
  /** Bytes of a key's name kept for display (longer names are cut); default 48. */
  nameBytes?: number;
  /** Slots find() looks at for one key; default 8. */
  maxProbes?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class KeyTable {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  readonly bigWords: number;
  readonly intWords: number;
  readonly nameBytes: number;
  readonly maxProbes: number;
  /** The caller's BigInt64 words: slot s owns big[s * bigWords … s * bigWords + bigWords − 1]. */
  readonly big: BigInt64Array;
  /** The caller's Int32 words: slot s owns int[s * intWords …]. */
  readonly int: Int32Array;
  readonly #header: Int32Array;
  readonly #hash: BigInt64Array;
  /** The same words as #hash, as Int32 halves, for inUse(). */
  readonly #hashHalves: Int32Array;
  readonly #touched: BigInt64Array;
  readonly #names: Uint8Array;
  readonly #mask: number;

  /** Bytes of the buffer a table of this shape needs: fixed, whatever it holds. */
  static bytesFor(shape: KeyTableShape): number {
    const nameBytes = shape.nameBytes ?? 48;
    const names = Math.ceil((shape.slots * nameBytes) / 8) * 8;
    return HEADER_BYTES + shape.slots * 8 * (2 + shape.bigWords) + Math.ceil((shape.slots * shape.intWords * 4) / 8) * 8 + names;
  }

  /** A new, empty table. */
  static create(shape: KeyTableShape): KeyTable {
    const { slots, bigWords, intWords } = shape;
    if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError(`KeyTable slots must be a power of two ≥ 2, got ${slots}`);
    const maxProbes = Math.min(shape.maxProbes ?? 8, slots);
    const buffer = new SharedArrayBuffer(KeyTable.bytesFor(shape));
    const header = new Int32Array(buffer, 0, HEADER_WORDS);
    header.set([slots, bigWords, intWords, shape.nameBytes ?? 48, maxProbes]);
    return new KeyTable(buffer);
  }

  /** Attach to a table created in another thread, from its buffer (the shape is in its header). */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, HEADER_WORDS);
    const slots = (this.slots = this.#header[H_SLOTS]!);
    const bigWords = (this.bigWords = this.#header[H_BIG]!);
    const intWords = (this.intWords = this.#header[H_INT]!);
    this.nameBytes = this.#header[H_NAME]!;
    this.maxProbes = this.#header[H_PROBES]!;
    this.#mask = slots - 1;
    let at = HEADER_BYTES;
    this.#hash = new BigInt64Array(buffer, at, slots);
    this.#hashHalves = new Int32Array(buffer, at, slots * 2);
    at += slots * 8;
    this.#touched = new BigInt64Array(buffer, at, slots);
    at += slots * 8;
    this.big = new BigInt64Array(buffer, at, slots * bigWords);
    at += slots * bigWords * 8;
    this.int = new Int32Array(buffer, at, slots * intWords);
    at += Math.ceil((slots * intWords * 4) / 8) * 8;
    this.#names = new Uint8Array(buffer, at, slots * this.nameBytes);
  }

  /** The 64-bit hash find() uses for `key` (never EMPTY or BUSY). Keep it to skip re-hashing (holds()). */
  static hash(key: string): bigint {
    hashHalves(key, HALVES);
    const h = (BigInt(HALVES[0]!) << 32n) | BigInt(HALVES[1]!);
    const signed = BigInt.asIntN(64, h);
    return signed === EMPTY || signed === BUSY ? 1n : signed;
  }

  /**
   * The slot of `key`, claiming one if it has none (recycling the stalest of its probe window when they
   * are all taken). `hash` is KeyTable.hash(key); `now` becomes the slot's touched time.
   */
  find(key: string, hash: bigint, now: bigint): number {
    for (let attempt = 0; ; attempt++) {
      const found = this.#probe(key, hash, now);
      if (found >= 0) return found;
      const recycled = this.#recycleStalest(key, hash, now);
      if (recycled >= 0) return recycled;
      // Another thread won the stalest slot: look again (it may have inserted our key). Each lost CAS
      // means another thread made progress, so this ends; the bound is a guard against a bug.
      if (attempt > 1000) throw new Error('KeyTable.find(): no slot after 1000 attempts');
    }
  }

  /** The slot of `key` if it has one, else −1. Claims nothing and touches nothing. */
  peek(hash: bigint): number {
    const home = Number(hash & BigInt(this.#mask));
    for (let p = 0; p < this.maxProbes; p++) {
      const s = (home + p) & this.#mask;
      if (this.#settled(s) === hash) return s;
    }
    return -1;
  }

  /** True while `slot` still belongs to the key with this hash (a cached slot number is still good). */
  holds(slot: number, hash: bigint): boolean {
    return Atomics.load(this.#hash, slot) === hash;
  }

  /** Set a slot's touched time (eviction recycles the smallest of a probe window). */
  touch(slot: number, when: bigint): void {
    Atomics.store(this.#touched, slot, when);
  }

  touched(slot: number): bigint {
    return Atomics.load(this.#touched, slot);
  }

  /** The key's text as it was stored (display only; cut at nameBytes − 1 bytes). */
  keyAt(slot: number): string {
    const at = slot * this.nameBytes;
    const length = this.#names[at]!;
    return decoder.decode(this.#names.slice(at + 1, at + 1 + length));
  }

  /**
   * Does `slot` hold a key now? A snapshot for display scans: another thread may claim or recycle it the
   * next moment. It reads the hash word as two Int32 halves (a BigInt load allocates; a scan of 65,536
   * slots spent most of its time there): EMPTY is 0 in both halves, BUSY −1 in both; a torn read of a
   * word being rewritten can only answer wrong about that one moment.
   */
  inUse(slot: number): boolean {
    const lo = Atomics.load(this.#hashHalves, 2 * slot);
    const hi = Atomics.load(this.#hashHalves, 2 * slot + 1);
    return !((lo === 0 && hi === 0) || (lo === -1 && hi === -1));
  }

  /** Every slot in use, in slot order: a display scan (each word read atomically, not one snapshot). */
  *occupied(): Generator<number> {
    for (let s = 0; s < this.slots; s++) if (this.inUse(s)) yield s;
  }

  /** How many slots were claimed empty, recycled, and how often find() waited on a BUSY slot. */
  get counts(): { claims: number; evictions: number; busyWaits: number } {
    return { claims: Atomics.load(this.#header, H_CLAIMS), evictions: Atomics.load(this.#header, H_EVICTIONS), busyWaits: Atomics.load(this.#header, H_BUSY_WAITS) };
  }

  /** Look through the probe window, taking an EMPTY slot if the key is not there. −1: every probed slot is another key's. */
  #probe(key: string, hash: bigint, now: bigint): number {
    const home = Number(hash & BigInt(this.#mask));
    for (let p = 0; p < this.maxProbes; p++) {
      const s = (home + p) & this.#mask;
      let seen = this.#settled(s);
      if (seen === EMPTY) {
        // The claim: exactly one thread moves an EMPTY slot to a hash.
        seen = Atomics.compareExchange(this.#hash, s, EMPTY, hash);
        if (seen === EMPTY) {
          this.#writeName(s, key);
          Atomics.store(this.#touched, s, now);
          Atomics.add(this.#header, H_CLAIMS, 1);
          return s;
        }
        if (seen === BUSY) seen = this.#settled(s);
      }
      if (seen === hash) {
        Atomics.store(this.#touched, s, now);
        return s;
      }
    }
    return -1;
  }

  /** Recycle the stalest slot of the probe window for `key`; −1 if another thread took that slot first. */
  #recycleStalest(key: string, hash: bigint, now: bigint): number {
    const home = Number(hash & BigInt(this.#mask));
    let victim = -1;
    let victimHash = EMPTY;
    let oldest = 0n;
    for (let p = 0; p < this.maxProbes; p++) {
      const s = (home + p) & this.#mask;
      const h = Atomics.load(this.#hash, s);
      if (h === BUSY) continue;
      if (h === EMPTY || h === hash) return -1; // the window changed since we probed: probe again
      const t = Atomics.load(this.#touched, s);
      if (victim < 0 || t < oldest) {
        victim = s;
        victimHash = h;
        oldest = t;
      }
    }
    if (victim < 0) return -1;
    // Step 1: win the slot. Only the thread whose CAS sees the victim's hash goes on.
    if (Atomics.compareExchange(this.#hash, victim, victimHash, BUSY) !== victimHash) return -1;
    // Step 2: while it reads BUSY nobody uses the slot's words: zero them, write the name and the time.
    this.big.fill(0n, victim * this.bigWords, (victim + 1) * this.bigWords);
    for (let i = victim * this.intWords; i < (victim + 1) * this.intWords; i++) Atomics.store(this.int, i, 0);
    this.#writeName(victim, key);
    Atomics.store(this.#touched, victim, now);
    Atomics.add(this.#header, H_EVICTIONS, 1);
    // Step 3: publish. Atomics.store is sequentially consistent: whoever reads the new hash also sees the
    // zeroed words written before it.
    Atomics.store(this.#hash, victim, hash);
    return victim;
  }

  /** A slot's hash word once it is not BUSY (a bounded spin; past it, BUSY is returned and read as "not ours"). */
  #settled(slot: number): bigint {
    let h = Atomics.load(this.#hash, slot);
    if (h !== BUSY) return h;
    Atomics.add(this.#header, H_BUSY_WAITS, 1);
    for (let i = 0; i < BUSY_SPINS && h === BUSY; i++) h = Atomics.load(this.#hash, slot);
    return h;
  }

  #writeName(slot: number, key: string): void {
    const at = slot * this.nameBytes;
    const room = this.#names.subarray(at + 1, at + this.nameBytes);
    const { written } = encoder.encodeInto(key, room);
    this.#names[at] = written;
  }
}

const HALVES = new Uint32Array(2);

/**
 * The 64 bits KeyTable.hash() is made of, as two unsigned 32-bit numbers written to `out` ([high, low]),
 * without BigInt: for callers that index tables of their own with numbers (the cache's URL counters).
 * Two 32-bit FNV-1a passes with different offsets, each finished with murmur3's fmix32, side by side.
 */
export function hashHalves(key: string, out: Uint32Array | number[]): void {
  let a = 0x811c9dc5;
  let b = 0x2166136;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  out[0] = fmix32(a);
  out[1] = fmix32(b);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
