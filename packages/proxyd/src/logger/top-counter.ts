/**
 * A bounded tally by key (destination host, client, …): requests and bytes for at most `capacity` keys,
 * everything else in one "other" bucket, so that a scan of a million random names costs no more memory
 * than a handful of busy ones. Sum of the keys + other = everything added, always.
 *
 * When a new key finds the table full, the table is pruned to half its capacity: kept are the keys
 * with the most requests, the most recently seen first among equal counts; the rest move into
 * "other". Pruning to half (rather than evicting one key per new key) makes the cost a sort every
 * capacity/2 new keys: O(log capacity) a key, amortized. What it guarantees: a key is only ever moved
 * out while it is not among the top capacity/2, and the (capacity/2)-th count is at most 2·total/capacity,
 * so a key with more requests than that since it (re)entered is never moved out; and a key seen again
 * before capacity/2 other new keys arrive always survives its first prune (most recent among equals). A
 * heavy hitter's count is therefore exact, or short by at most the few requests it had before a prune
 * took it: the top of the table is the true top.
 */
export interface Tally {
  requests: number;
  bytesUp: number;
  bytesDown: number;
}

interface Entry extends Tally {
  /** A tick of the counter at the key's last request: the tie-break when pruning. */
  seen: number;
}

/** The key that stands for everything beyond the top keys, in memory and in the store. */
export const OTHER = '(other)';

export class TopCounter {
  readonly #capacity: number;
  readonly #entries = new Map<string, Entry>();
  readonly #other: Tally = { requests: 0, bytesUp: 0, bytesDown: 0 };
  #tick = 0;

  constructor(capacity: number) {
    this.#capacity = Math.max(2, capacity);
  }

  get size(): number {
    return this.#entries.size;
  }

  add(key: string, requests: number, bytesUp: number, bytesDown: number): void {
    if (key === OTHER) return void addTo(this.#other, requests, bytesUp, bytesDown);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      if (this.#entries.size >= this.#capacity) this.#prune(this.#capacity >> 1);
      entry = { requests: 0, bytesUp: 0, bytesDown: 0, seen: 0 };
      this.#entries.set(key, entry);
    }
    addTo(entry, requests, bytesUp, bytesDown);
    entry.seen = ++this.#tick;
  }

  /** The `n` keys with the most requests, then "other" (everything else, when there is any). */
  top(n: number): [string, Tally][] {
    const sorted = this.#sorted();
    const other = { ...this.#other };
    for (const [, e] of sorted.slice(n)) addTo(other, e.requests, e.bytesUp, e.bytesDown);
    const rows: [string, Tally][] = sorted.slice(0, n).map(([k, e]) => [k, { requests: e.requests, bytesUp: e.bytesUp, bytesDown: e.bytesDown }]);
    if (other.requests > 0 || other.bytesUp > 0 || other.bytesDown > 0) rows.push([OTHER, other]);
    return rows;
  }

  #sorted(): [string, Entry][] {
    return [...this.#entries].sort((a, b) => b[1].requests - a[1].requests || b[1].seen - a[1].seen);
  }

  /** Keep the best `keep` keys; the rest go into "other". */
  #prune(keep: number): void {
    for (const [key, e] of this.#sorted().slice(keep)) {
      addTo(this.#other, e.requests, e.bytesUp, e.bytesDown);
      this.#entries.delete(key);
    }
  }
}

function addTo(tally: Tally, requests: number, bytesUp: number, bytesDown: number): void {
  tally.requests += requests;
  tally.bytesUp += bytesUp;
  tally.bytesDown += bytesDown;
}
