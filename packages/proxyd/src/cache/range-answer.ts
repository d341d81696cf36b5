// A Range request answered from a stored object: undici's interceptor hands over the whole 200, and this
// handler turns it into the 206 (or 416) the client asked for, passing on only the bytes in range.
// One range only ("bytes=a-b", "a-", "-n"): a request for several, or with If-Range, gets the whole 200,
// which RFC 9110 §14.2 allows (a server may ignore Range).
import type { Dispatcher } from 'undici';

export interface ByteRange {
  /** first byte, or -1 for a suffix range ("-n": the last n bytes) */
  start: number;
  /** last byte (inclusive), Infinity for "to the end"; for a suffix range, n */
  end: number;
}

/** The one byte range a request asks for, or undefined (none, several, If-Range, unparsable). */
export function wantedRange(headers: Record<string, string | string[]> | undefined): ByteRange | undefined {
  const value = headers?.range;
  if (typeof value !== 'string' || headers?.['if-range'] !== undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { start: -1, end: Number(m[2]) };
  const start = Number(m[1]);
  const end = m[2] === '' ? Infinity : Number(m[2]);
  return end < start ? undefined : { start, end };
}

export class RangeAnswer implements Dispatcher.DispatchHandler {
  readonly #range: ByteRange;
  readonly #inner: Dispatcher.DispatchHandler;
  #from = 0;
  #to = -1; // inclusive; -1 before the head, or when the whole answer passes through
  #offset = 0;
  #whole = true;

  constructor(range: ByteRange, inner: Dispatcher.DispatchHandler) {
    this.#range = range;
    this.#inner = inner;
  }

  onRequestStart(c: Dispatcher.DispatchController, context: unknown): void {
    this.#inner.onRequestStart?.(c, context);
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, message?: string): void {
    const length = Number(headers['content-length']);
    if (status !== 200 || !Number.isSafeInteger(length)) return void this.#inner.onResponseStart?.(c, status, headers, message);
    this.#whole = false;
    const { start, end } = this.#range;
    const from = start < 0 ? Math.max(0, length - end) : start;
    const to = start < 0 ? length - 1 : Math.min(end, length - 1);
    const rest: Record<string, string | string[] | undefined> = { ...headers };
    if (from >= length || (start < 0 && end === 0)) {
      // Unsatisfiable (RFC 9110 §15.5.17): 416 with the length, and none of the body.
      this.#from = 1;
      this.#to = 0;
      const body = '';
      return void this.#inner.onResponseStart?.(noRaw(c), 416, { ...rest, 'content-range': `bytes */${length}`, 'content-length': String(body.length) }, 'Range Not Satisfiable');
    }
    this.#from = from;
    this.#to = to;
    rest['content-range'] = `bytes ${from}-${to}/${length}`;
    rest['content-length'] = String(to - from + 1);
    this.#inner.onResponseStart?.(noRaw(c), 206, rest, 'Partial Content');
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#whole) return void this.#inner.onResponseData?.(c, chunk);
    const first = this.#offset;
    this.#offset += chunk.length;
    const last = this.#offset - 1;
    if (last < this.#from || first > this.#to) return; // outside the range
    this.#inner.onResponseData?.(c, chunk.subarray(Math.max(0, this.#from - first), Math.min(chunk.length, this.#to - first + 1)));
  }

  onResponseEnd(c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#inner.onResponseEnd?.(c, trailers);
  }

  onResponseError(c: Dispatcher.DispatchController, err: Error): void {
    this.#inner.onResponseError?.(c, err);
  }
}

/** The same controller without its raw headers, so that the receiver reads the rewritten header object. */
function noRaw(c: Dispatcher.DispatchController): Dispatcher.DispatchController {
  return {
    get aborted() {
      return c.aborted;
    },
    get paused() {
      return c.paused;
    },
    get reason() {
      return c.reason;
    },
    rawHeaders: null,
    abort: (reason: Error) => c.abort(reason),
    pause: () => c.pause(),
    resume: () => c.resume(),
  };
}
