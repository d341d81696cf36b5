/**
 * InFlightTable — "one fetch, many waiters": request coalescing across threads.
 *
 * The problem. A cache that misses goes to the origin and stores what comes back. When fifty clients
 * ask for the same cold URL at the same moment — in four threads — each one checks the cache, each one
 * misses (nothing is stored until the first answer is complete), and each one fetches: fifty origin
 * requests for one object. The check and the fetch are a check-then-act, like the unguarded counter in
 * mutex.test.ts; test/in-flight.test.ts makes it happen. What we want is that the first thread to miss
 * becomes the *leader* and fetches, and every later thread becomes a *follower* that waits for the
 * leader to finish and then reads the cache.
 *
 * The table. A fixed number of slots in one SharedArrayBuffer, each for one key (a URL, hashed by the
 * caller to two Int32 words) while anybody is interested in it. Five Int32 words per slot:
 *
 *     word     the state followers sleep on: (epoch << 2) | phase
 *                 phase 1 FETCHING  a leader is fetching (epoch says which leader)
 *                       2 DONE      the leader finished: the result is wherever the caller keeps it
 *                       3 ABANDONED the leader gave up (the fetch failed): a follower may take over
 *     keyHi, keyLo   the key                                  (written under the mutex)
 *     refs     threads attached to the slot: leader + followers; 0 = the slot is free (under the mutex)
 *     waiting  followers asleep now (for the dashboard)       (Atomics.add)
 *     progress bumped by the leader as its fetch moves (Atomics.add): "I am alive"
 *
 * plus a header with the internal Mutex and counters (slots in use, followers ever, takeovers ever).
 *
 *     join(key)      under the mutex: find the key's slot, or take a free one.
 *                    new slot            → LEADER  (word := epoch+1 | FETCHING, refs = 1)
 *                    slot FETCHING       → FOLLOWER (refs++, remembers the word it saw)
 *                    slot DONE           → DONE at once: the result was published just now, read it
 *                    slot ABANDONED      → the caller tries to take over, as a follower would
 *                    no free slot        → FULL: fetch without coalescing (the table is bounded)
 *     finish(j, ok)  leader: CAS word e|FETCHING → e|DONE (or e|ABANDONED), notify all, leave
 *     follow(j)      follower: waitAsync on the word while it is what it saw, with a timeout, and then
 *                      DONE      → leave; 'done' (read the result)
 *                      ABANDONED → take over: CAS e|ABANDONED → (e+1)|FETCHING; the winner is the new
 *                                  leader, the losers now see the new epoch and wait for it
 *                      timed out, the word unchanged and the leader's progress word unchanged since the
 *                      last look → the leader is presumed dead (its thread crashed): take over with
 *                      CAS e|FETCHING → (e+1)|FETCHING, and write off the dead leader's ref
 *
 * Exactly one leader per epoch. Every change of leader is one compareExchange on the slot's word from
 * the value the contenders all saw: of any number of racing followers exactly one wins, the rest read
 * the new word and keep waiting. The leader's own finish() is a CAS from the same value, so a leader
 * presumed dead that turns out to be only slow either finishes first (and the followers' CAS fails) or
 * finds its epoch taken (its CAS fails, and it must not touch the slot again: the taker wrote its ref
 * off). Why no follower sleeps through the end: the leader changes the word *before* it notifies, and a
 * follower's Atomics.waitAsync compares the word with the value it saw in the same step as it enqueues
 * (wait.ts) — a change before the compare answers 'not-equal', a change after it finds the waiter queued.
 *
 * Why a mutex, and not only CAS. Two threads that miss the same key at once must agree on *one slot*;
 * finding the key or claiming a free slot is a scan plus several word writes (key, refs, state), and a
 * lock-free version would need a claim protocol per slot. The scan is bounded (at most `used` occupied
 * slots are looked at) and nothing waits under the lock, so the blocking Mutex.lock() is fine in any
 * thread — the futex bargain again. The waiting happens outside the lock, on the slot's own word.
 *
 * Why refs, and why a slot is not reused while anyone holds it. A follower that sleeps on a slot must
 * find *its* key's story there when it wakes, not a later key's. So a slot is freed only when the last
 * thread attached to it leaves (refs → 0, under the mutex), and the epoch in the word only ever grows
 * (wrapping after 2^29 fetches through one slot): a waiter's remembered word can never come back.
 *
 * Look, join, look again. The caller looks for the result first (a hit needs no table at all) and joins
 * only after a miss — but the look and the join are two steps, and a leader may finish in between: its
 * result published, its slot freed (no follower left holding it), so the join finds no slot and answers
 * LEADER, and a second fetch starts for a result that is already there (the race test/in-flight.test.ts
 * shows, step by step and across threads). So a new LEADER looks once more before it fetches, and if the
 * result is there it finish()es at once (ok) and uses it. That second look cannot miss a leader that has
 * left: a leader publishes before its finish(), and leaves under the mutex; a join that found no slot for
 * the key took the same mutex after that leave, so the publication happened before the second look. (A
 * join that finds the slot still held gets FOLLOWER or DONE, and reads the result after the leader's
 * notify.) One look after the join alone would do too, but the look before keeps hits off the mutex.
 *
 * Keys are hashes. Two URLs with the same 53-bit hash would share a slot: a follower would wait for the
 * wrong fetch, then read its result and not find what it wants — the caller then fetches on its own. A
 * delay, never a wrong answer; the caller decides what a result is, the table only orders the fetches.
 */
import { Mutex } from './mutex.ts';
import { deadlineIn, waitAsyncUntil } from './wait.ts';

const FETCHING = 1;
const DONE = 2;
const ABANDONED = 3;
const PHASE_MASK = 3;

/** Header words after the mutex's: slots in use, followers ever, takeovers ever. */
const H_USED = 0;
const H_FOLLOWERS = 1;
const H_TAKEOVERS = 2;
const HEADER_WORDS = 4;

/** Words per slot. */
const W_STATE = 0;
const W_KEY_HI = 1;
const W_KEY_LO = 2;
const W_REFS = 3;
const W_WAITING = 4;
const W_PROGRESS = 5;
const SLOT_WORDS = 6;

/** What join() answered: lead the fetch, follow one, read the result at once, or go alone (table full). */
export type Joined =
  | { readonly role: 'leader'; readonly slot: number; readonly word: number }
  | { readonly role: 'follower'; readonly slot: number; readonly word: number }
  | { readonly role: 'done' }
  | { readonly role: 'full' };

/** How a follower's wait ended: the leader finished, or this thread is now the leader. */
export type Followed = { readonly role: 'done' } | { readonly role: 'leader'; readonly slot: number; readonly word: number } | { readonly role: 'aborted' };

export interface FollowOptions {
  /** How long the leader may show no progress before a follower takes over (ms). */
  patienceMs: number;
  /** Stop waiting (the caller's client went away): the follower leaves. */
  signal?: AbortSignal;
}

export interface InFlightSnapshot {
  /** Keys being fetched now. */
  inFlight: number;
  /** Followers asleep now. */
  waiting: number;
  /** Followers ever (each one origin fetch saved, when the leader's result was usable). */
  followers: number;
  /** Times a follower took over from a leader that failed or went silent. */
  takeovers: number;
}

export class InFlightTable {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  readonly #mutex: Mutex;
  readonly #header: Int32Array;
  readonly #words: Int32Array;

  static create(slots: number): InFlightTable {
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`InFlightTable slots must be an integer ≥ 1, got ${slots}`);
    return new InFlightTable(new SharedArrayBuffer(Mutex.BYTES + (HEADER_WORDS + slots * SLOT_WORDS) * 4));
  }

  /** Attach to a table created in another thread, from its buffer. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#mutex = new Mutex(buffer, 0);
    this.#header = new Int32Array(buffer, Mutex.BYTES, HEADER_WORDS);
    this.#words = new Int32Array(buffer, Mutex.BYTES + HEADER_WORDS * 4);
    this.slots = Math.floor(this.#words.length / SLOT_WORDS);
  }

  /**
   * Register interest in `key` (two Int32 words of a hash). Never blocks for longer than the scan. A caller
   * that looked for the result before joining must look again when it is made LEADER (see the top).
   */
  join(keyHi: number, keyLo: number): Joined {
    const w = this.#words;
    this.#mutex.lock();
    try {
      const used = this.#header[H_USED]!;
      let free = -1;
      let seen = 0;
      const start = ((keyHi ^ keyLo) >>> 0) % this.slots;
      // Look at most at `used` occupied slots (the rest of the table is free): bounded, and short.
      for (let i = 0; i < this.slots && (seen < used || free < 0); i++) {
        const slot = (start + i) % this.slots;
        const base = slot * SLOT_WORDS;
        if (w[base + W_REFS] === 0) {
          if (free < 0) free = slot;
          continue;
        }
        seen++;
        if (w[base + W_KEY_HI] !== keyHi || w[base + W_KEY_LO] !== keyLo) continue;
        const word = Atomics.load(w, base + W_STATE);
        const phase = word & PHASE_MASK;
        if (phase === DONE) return { role: 'done' };
        // FETCHING: follow it. ABANDONED: attach as a follower too; follow() takes over at once.
        w[base + W_REFS]!++;
        Atomics.add(w, base + W_WAITING, 1);
        Atomics.add(this.#header, H_FOLLOWERS, 1);
        return { role: 'follower', slot, word };
      }
      if (free < 0) return { role: 'full' };
      const base = free * SLOT_WORDS;
      w[base + W_KEY_HI] = keyHi;
      w[base + W_KEY_LO] = keyLo;
      w[base + W_REFS] = 1;
      this.#header[H_USED]!++;
      // A new epoch: a word no earlier waiter on this slot can have remembered.
      const word = nextEpoch(Atomics.load(w, base + W_STATE), FETCHING);
      Atomics.store(w, base + W_STATE, word);
      return { role: 'leader', slot: free, word };
    } finally {
      this.#mutex.unlock();
    }
  }

  /** Leader: the fetch moved (bytes arrived). Followers that time out see it and keep waiting. */
  progress(j: { slot: number }): void {
    Atomics.add(this.#words, j.slot * SLOT_WORDS + W_PROGRESS, 1);
  }

  /**
   * Leader: publish the end of the fetch — `ok` (the result is readable now) or not (a follower should
   * fetch instead) — wake every follower, and leave. False when this leader had been presumed dead and
   * replaced: then it has already been written off and does nothing.
   */
  finish(j: { slot: number; word: number }, ok: boolean): boolean {
    const index = j.slot * SLOT_WORDS + W_STATE;
    const next = (j.word & ~PHASE_MASK) | (ok ? DONE : ABANDONED);
    // The same CAS a taking-over follower makes, from the same value: exactly one of us succeeds.
    if (Atomics.compareExchange(this.#words, index, j.word, next) !== j.word) return false;
    Atomics.notify(this.#words, index); // every follower: they all read the result (or race to take over)
    this.#leave(j.slot);
    return true;
  }

  /** Follower: wait for the leader's end; take over if it gave up or went silent. */
  async follow(j: { slot: number; word: number }, { patienceMs, signal }: FollowOptions): Promise<Followed> {
    const w = this.#words;
    const base = j.slot * SLOT_WORDS;
    let seen = j.word;
    let progress = Atomics.load(w, base + W_PROGRESS);
    for (;;) {
      const phase = seen & PHASE_MASK;
      if (phase === DONE) return this.#stopFollowing(j.slot, { role: 'done' });
      if (phase === ABANDONED) {
        // The leader left; take over. The CAS decides among the followers racing for it.
        const lead = nextEpoch(seen, FETCHING);
        if (Atomics.compareExchange(w, base + W_STATE, seen, lead) === seen) return this.#becomeLeader(j.slot, lead, false);
        seen = Atomics.load(w, base + W_STATE); // somebody else leads now: wait for them
        continue;
      }
      const why = await waitAsyncUntil(w, base + W_STATE, seen, { deadline: deadlineIn(patienceMs), signal });
      if (why === 'aborted') return this.#stopFollowing(j.slot, { role: 'aborted' });
      const now = Atomics.load(w, base + W_STATE);
      if (now !== seen) {
        seen = now;
        continue;
      }
      if (why !== 'timed-out') continue;
      const moved = Atomics.load(w, base + W_PROGRESS);
      if (moved !== progress) {
        progress = moved; // slow, not dead: keep waiting
        continue;
      }
      // Silent for a whole patience period: presume the leader dead, and race the others (and the leader's
      // own finish()) for the word.
      const lead = nextEpoch(seen, FETCHING);
      if (Atomics.compareExchange(w, base + W_STATE, seen, lead) === seen) return this.#becomeLeader(j.slot, lead, true);
      seen = Atomics.load(w, base + W_STATE);
    }
  }

  /** A thread that joined and will not follow after all (e.g. its client left): let go of the slot. */
  leave(j: { slot: number }): void {
    Atomics.sub(this.#words, j.slot * SLOT_WORDS + W_WAITING, 1);
    this.#leave(j.slot);
  }

  /** Display numbers, read without the lock (each word is read atomically; the sum is a snapshot). */
  snapshot(): InFlightSnapshot {
    const w = this.#words;
    let inFlight = 0;
    let waiting = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      const base = slot * SLOT_WORDS;
      if (Atomics.load(w, base + W_REFS) === 0) continue;
      if ((Atomics.load(w, base + W_STATE) & PHASE_MASK) === FETCHING) inFlight++;
      waiting += Atomics.load(w, base + W_WAITING);
    }
    return { inFlight, waiting, followers: Atomics.load(this.#header, H_FOLLOWERS), takeovers: Atomics.load(this.#header, H_TAKEOVERS) };
  }

  #becomeLeader(slot: number, word: number, leaderPresumedDead: boolean): Followed {
    const base = slot * SLOT_WORDS;
    Atomics.sub(this.#words, base + W_WAITING, 1);
    Atomics.add(this.#header, H_TAKEOVERS, 1);
    // A dead leader never leaves: its ref is written off here, by the one thread whose CAS replaced it.
    // (A leader that finished with ABANDONED has left already.) This thread's own ref becomes the leader's.
    if (leaderPresumedDead) this.#mutex.withLock(() => void this.#words[base + W_REFS]!--);
    return { role: 'leader', slot, word };
  }

  #stopFollowing(slot: number, answer: Followed): Followed {
    Atomics.sub(this.#words, slot * SLOT_WORDS + W_WAITING, 1);
    this.#leave(slot);
    return answer;
  }

  #leave(slot: number): void {
    const base = slot * SLOT_WORDS;
    this.#mutex.withLock(() => {
      // The last one out frees the slot; its word keeps the epoch, so the next key's epochs go on from it.
      if (--this.#words[base + W_REFS]! === 0) this.#header[H_USED]!--;
    });
  }
}

/** The word of the next epoch with `phase` (epochs wrap within 30 bits; the sign bit is never set). */
function nextEpoch(word: number, phase: number): number {
  const epoch = ((word >>> 2) + 1) & 0x1fffffff;
  return (epoch << 2) | phase;
}
