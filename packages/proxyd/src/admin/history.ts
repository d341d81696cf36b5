// The last minute of chart points, kept by the admin server so that a dashboard opened now starts with a
// history (and rates, from consecutive points) instead of one point. A fixed array used as a ring: once
// full, each tick overwrites the oldest point, so what it holds is bounded by its capacity.
export class History<T> {
  readonly #slots: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`History capacity must be a positive integer, not ${capacity}`);
    this.#slots = new Array<T | undefined>(capacity).fill(undefined);
  }

  get capacity(): number {
    return this.#slots.length;
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    this.#slots[this.#next] = item;
    this.#next = (this.#next + 1) % this.#slots.length;
    this.#size = Math.min(this.#size + 1, this.#slots.length);
  }

  /** Oldest first. */
  toArray(): T[] {
    const start = (this.#next - this.#size + this.#slots.length) % this.#slots.length;
    return Array.from({ length: this.#size }, (_, i) => this.#slots[(start + i) % this.#slots.length] as T);
  }
}
