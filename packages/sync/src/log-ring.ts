/**
 * LogRing — a byte ring of length-prefixed records in one SharedArrayBuffer: many producer threads, one
 * consumer thread (the logger). Records are bytes (proxyd writes one JSON object per record).
 *
 *     header (Int32):  [mutex ×2][writeSeq][readSeq][dropped][records][capacity][asleep]
 *     data   (bytes):  capacity bytes, a power of two
 *
 *           readSeq                     writeSeq
 *              ▼                           ▼
 *     … ─────[len|payload···pad][len|payload·pad]───────── free ──────── … (wraps around)
 *
 * writeSeq and readSeq count bytes ever written and consumed; they only grow (wrapping at 2^32, which the
 * `| 0` / `>>> 0` arithmetic handles) and a byte's place in the ring is `seq & (capacity − 1)`. The ring
 * is empty when they are equal and holds writeSeq − readSeq bytes. Each record is a 4-byte length and its
 * payload, padded to 4 bytes so that every length word is aligned; a payload may wrap around the end.
 *
 * Producers (any thread): lock the mutex; if the record does not fit in the free space, count it in
 * `dropped` and return false (a full ring never blocks the data path); otherwise copy it in, then
 * publish it with Atomics.store(writeSeq) — the store orders the copy before it for any thread that
 * Atomics.load()s writeSeq; unlock; then, only if the consumer said it is asleep, Atomics.notify(writeSeq)
 * to wake it. The mutex is held for one bounded copy, so the blocking lock() is fine on every thread.
 *
 * Consumer (one thread): Atomics.load(writeSeq), copy every record up to it out of the ring, then
 * Atomics.store(readSeq) to hand the space back. It needs no lock: producers only write between writeSeq
 * and readSeq + capacity, which the consumer never touches. With nothing to read it sleeps on writeSeq
 * (Atomics.waitAsync, so the logger's event loop keeps running). drainText() copies a record out as a
 * string, decoded straight from the ring: until readSeq moves, nobody writes those bytes either.
 *
 * Why the `asleep` word: a notify is not free (with an async waiter it is a cross-thread wake-up, a
 * system call), and a busy consumer is not waiting, so producers notify only when the consumer has
 * raised `asleep`. The consumer raises it *before* it calls Atomics.waitAsync(writeSeq, seen), which
 * compares and enqueues in one atomic step; a producer stores writeSeq *before* it looks at `asleep`.
 * With sequentially consistent Atomics the two crossed store-then-load pairs cannot both miss (as in
 * Dekker's algorithm): either the producer sees `asleep` and notifies — waking the waiter, or finding
 * none yet, in which case the wait's compare sees the new writeSeq and returns at once — or it does not,
 * and then its writeSeq store came first and the wait's compare sees it. No record is slept through.
 * Measured on the proxy's hot path: the per-record notify was 4% of a serving thread's time.
 */
import { Mutex } from './mutex.ts';
import { deadlineIn, waitAsyncUntil } from './wait.ts';

const WRITE_SEQ = 2;
const READ_SEQ = 3;
const DROPPED = 4;
const RECORDS = 5;
const CAPACITY = 6;
const ASLEEP = 7;
const HEADER_WORDS = 8;
const HEADER_BYTES = HEADER_WORDS * 4;
const LENGTH_BYTES = 4;

export class RecordTooLargeError extends RangeError {
  override name = 'RecordTooLargeError';
  constructor(bytes: number, capacity: number) {
    super(`LogRing: a record of ${bytes} bytes can never fit in a ring of ${capacity} bytes`);
  }
}

function padded(bytes: number): number {
  return LENGTH_BYTES + ((bytes + 3) & ~3);
}

export class LogRing {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly #words: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;
  readonly #mask: number;
  readonly #mutex: Mutex;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();
  /** Per-thread scratch space for writeString (this object lives in one thread). */
  readonly #scratch = new Uint8Array(16 * 1024);
  /** The consumer's: where drainText puts together a record that wraps around the end. */
  #wrapped = new Uint8Array(0);

  /** Create a ring with `capacity` data bytes (rounded up to a power of two, at least 64). */
  static create(capacity: number): LogRing {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 30) {
      throw new RangeError(`LogRing capacity must be an integer from 1 to 2^30 bytes, got ${capacity}`);
    }
    let size = 64;
    while (size < capacity) size *= 2;
    const buffer = new SharedArrayBuffer(HEADER_BYTES + size);
    new Int32Array(buffer, 0, HEADER_WORDS)[CAPACITY] = size;
    return new LogRing(buffer);
  }

  /** Attach to a ring created in another thread, from its buffer. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#words = new Int32Array(buffer, 0, HEADER_WORDS);
    this.capacity = this.#words[CAPACITY]!;
    this.#data = new Uint8Array(buffer, HEADER_BYTES, this.capacity);
    this.#view = new DataView(buffer, HEADER_BYTES, this.capacity);
    this.#mask = this.capacity - 1;
    this.#mutex = new Mutex(buffer, 0);
  }

  /** The largest payload a record may have. */
  get maxRecordBytes(): number {
    return this.capacity - LENGTH_BYTES;
  }

  /**
   * Append one record. Returns false — and counts the record in `dropped` — when the ring has no room
   * now; throws RecordTooLargeError when it could never have room.
   */
  write(record: Uint8Array): boolean {
    if (padded(record.byteLength) > this.capacity) throw new RecordTooLargeError(record.byteLength, this.capacity);
    const words = this.#words;
    this.#mutex.lock();
    try {
      const writeSeq = words[WRITE_SEQ]!;
      const used = (writeSeq - Atomics.load(words, READ_SEQ)) >>> 0;
      const need = padded(record.byteLength);
      if (need > this.capacity - used) {
        Atomics.add(words, DROPPED, 1);
        return false;
      }
      const at = writeSeq & this.#mask;
      this.#view.setUint32(at, record.byteLength); // aligned: never split by the wrap
      this.#copyIn(record, (at + LENGTH_BYTES) & this.#mask);
      Atomics.add(words, RECORDS, 1);
      Atomics.store(words, WRITE_SEQ, (writeSeq + need) | 0); // publish: orders the copy before it
    } finally {
      this.#mutex.unlock();
    }
    if (Atomics.load(words, ASLEEP) !== 0) Atomics.notify(words, WRITE_SEQ, 1);
    return true;
  }

  /** Append a string as a UTF-8 record (see write()). Encodes into a reused buffer: no allocation. */
  writeString(text: string): boolean {
    if (text.length * 3 > this.#scratch.length) return this.write(this.#encoder.encode(text));
    const { written } = this.#encoder.encodeInto(text, this.#scratch);
    return this.write(this.#scratch.subarray(0, written));
  }

  /**
   * Consumer only: copy out every record published so far, in order, and free their space.
   * Calls `onRecord` for each; returns how many there were.
   */
  drain(onRecord: (record: Uint8Array) => void): number {
    return this.#drain((at, length) => onRecord(this.#copyOut(at, length)));
  }

  /**
   * Consumer only: drain(), with each record decoded as UTF-8 text straight from the ring (a record
   * that wraps around the end is put together in scratch space first). The logger reads its records
   * this way: a fresh Uint8Array per record only to decode it was a tenth of its time (issue 20).
   */
  drainText(onRecord: (text: string) => void): number {
    return this.#drain((at, length) => onRecord(this.#decoder.decode(this.#bytesAt(at, length))));
  }

  #drain(onRecord: (at: number, length: number) => void): number {
    const words = this.#words;
    const writeSeq = Atomics.load(words, WRITE_SEQ);
    let readSeq = words[READ_SEQ]!;
    let count = 0;
    while (readSeq !== writeSeq) {
      const at = readSeq & this.#mask;
      const length = this.#view.getUint32(at);
      onRecord((at + LENGTH_BYTES) & this.#mask, length);
      readSeq = (readSeq + padded(length)) | 0;
      count++;
    }
    Atomics.store(words, READ_SEQ, readSeq); // hand the space back to the producers
    return count;
  }

  /**
   * Consumer only: wait without blocking the thread until a record is published (or `timeoutMs`
   * passes). Resolves at once when records are already waiting.
   */
  async waitForRecords(timeoutMs: number = Infinity): Promise<void> {
    const words = this.#words;
    Atomics.store(words, ASLEEP, 1); // before the wait's compare: producers from here on notify
    try {
      const writeSeq = Atomics.load(words, WRITE_SEQ);
      if (writeSeq !== Atomics.load(words, READ_SEQ)) return;
      // The helper compares writeSeq synchronously, before its first await: after our `asleep` store, as
      // the handshake needs. With a timeout it holds a timer, so the thread lives to see the timeout;
      // with none it holds nothing (the logger keeps its thread alive).
      await waitAsyncUntil(words, WRITE_SEQ, writeSeq, { deadline: deadlineIn(timeoutMs) });
    } finally {
      Atomics.store(words, ASLEEP, 0);
    }
  }

  /** Consumer only, blocking form of waitForRecords() for threads that may block. */
  waitForRecordsSync(timeoutMs: number = Infinity): void {
    const words = this.#words;
    Atomics.store(words, ASLEEP, 1);
    const writeSeq = Atomics.load(words, WRITE_SEQ);
    if (writeSeq === Atomics.load(words, READ_SEQ)) Atomics.wait(words, WRITE_SEQ, writeSeq, timeoutMs);
    Atomics.store(words, ASLEEP, 0);
  }

  /** Records refused because the ring was full. */
  get dropped(): number {
    return Atomics.load(this.#words, DROPPED);
  }
  /** Records accepted since creation. */
  get written(): number {
    return Atomics.load(this.#words, RECORDS);
  }
  /** Bytes in the ring not yet consumed. */
  get usedBytes(): number {
    return (Atomics.load(this.#words, WRITE_SEQ) - Atomics.load(this.#words, READ_SEQ)) >>> 0;
  }
  /** How often a producer found the ring's mutex taken. */
  get contention(): number {
    return this.#mutex.contention;
  }

  #copyIn(bytes: Uint8Array, at: number): void {
    const first = Math.min(bytes.byteLength, this.capacity - at);
    this.#data.set(bytes.subarray(0, first), at);
    if (first < bytes.byteLength) this.#data.set(bytes.subarray(first), 0);
  }

  /** A record's payload as one view: in place when it does not wrap, else copied into the scratch space. */
  #bytesAt(at: number, length: number): Uint8Array {
    if (at + length <= this.capacity) return this.#data.subarray(at, at + length);
    if (this.#wrapped.length < length) this.#wrapped = new Uint8Array(Math.max(length, 1024));
    const first = this.capacity - at;
    this.#wrapped.set(this.#data.subarray(at), 0);
    this.#wrapped.set(this.#data.subarray(0, length - first), first);
    return this.#wrapped.subarray(0, length);
  }

  #copyOut(at: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    const first = Math.min(length, this.capacity - at);
    out.set(this.#data.subarray(at, at + first), 0);
    if (first < length) out.set(this.#data.subarray(0, length - first), first);
    return out;
  }
}
