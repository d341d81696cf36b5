/**
 * Stats — named 64-bit counters and gauges in one SharedArrayBuffer, updated with Atomics.add from any
 * thread and read from any thread without a lock.
 *
 * Each name owns one BigInt64 slot. Atomics.add on a slot is a single atomic read-modify-write, so
 * concurrent increments from several threads never lose an update (a plain `x[i] += n` is a load, an add
 * and a store, and two threads interleaving those lose one of the adds). 64 bits, because byte counters
 * pass 2^31 within seconds on a busy proxy. A reader sees each counter exactly, but different counters
 * at slightly different instants: a snapshot is not one atomic picture, which is fine for metrics.
 *
 * Both sides build the same name → slot table from the same list of names, so the list is the schema:
 * create it from a constant that every thread imports.
 */
const ONE = 1n;
const MINUS_ONE = -1n;

export class Stats<Name extends string> {
  readonly buffer: SharedArrayBuffer;
  readonly names: readonly Name[];
  readonly #slots: BigInt64Array;
  readonly #index: Map<Name, number>;

  /** Create zeroed counters for `names` in a new buffer. */
  static create<N extends string>(names: readonly N[]): Stats<N> {
    return new Stats(new SharedArrayBuffer(names.length * BigInt64Array.BYTES_PER_ELEMENT), names);
  }

  /** Attach to counters created in another thread, with the same list of names. */
  constructor(buffer: SharedArrayBuffer, names: readonly Name[]) {
    if (new Set(names).size !== names.length) throw new Error('Stats: names must be unique');
    if (buffer.byteLength !== names.length * BigInt64Array.BYTES_PER_ELEMENT) {
      throw new Error(`Stats: buffer holds ${buffer.byteLength / 8} counters, names list ${names.length}`);
    }
    this.buffer = buffer;
    this.names = names;
    this.#slots = new BigInt64Array(buffer);
    this.#index = new Map(names.map((name, i) => [name, i]));
  }

  /**
   * Add `n` (may be negative, for gauges). Returns nothing: a proxy calls this about fifteen times per
   * connection, and the new value would cost two more BigInts and a Number each time that nobody read.
   * ±1, nearly every call, uses a constant instead of a new BigInt(n).
   */
  add(name: Name, n = 1): void {
    Atomics.add(this.#slots, this.#slotOf(name), n === 1 ? ONE : n === -1 ? MINUS_ONE : BigInt(n));
  }

  /** Set a gauge. */
  set(name: Name, value: number): void {
    Atomics.store(this.#slots, this.#slotOf(name), BigInt(value));
  }

  get(name: Name): number {
    return Number(Atomics.load(this.#slots, this.#slotOf(name)));
  }

  /** Every counter by name (each read atomically; see the note on snapshots above). */
  snapshot(): Record<Name, number> {
    const out = {} as Record<Name, number>;
    for (const name of this.names) out[name] = this.get(name);
    return out;
  }

  #slotOf(name: Name): number {
    const i = this.#index.get(name);
    if (i === undefined) throw new Error(`Stats: unknown counter "${name}"`);
    return i;
  }
}
