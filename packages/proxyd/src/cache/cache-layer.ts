/**
 * The cache as a serving thread sees it: one undici dispatcher that answers plain-HTTP requests from the
 * shared store (shared-store.ts) or fetches them, built from three layers around the upstream Agent:
 *
 *   front (this file)          → undici's cache interceptor (RFC 9111)  → trace (this file) → Agent
 *   deny list, only-if-cached,    freshness, Vary, revalidation (304),    counts the origin
 *   Range on a stored object,     stale-while-revalidate, stale-if-error, fetches and their
 *   coalescing of misses          what may be stored, invalidation        status, for the tag
 *
 * The semantics are undici's (kept up to date by its maintainers and run against the http cache-tests
 * suite); proxyd adds the store every thread shares, coalescing across threads (InFlightTable), the
 * parts a proxy needs that a client library does not (only-if-cached's 504, a 206 from a stored object,
 * the deny list, PURGE) and the tag each request is logged with (cache-status.ts).
 */
import { createRequire } from 'node:module';
import type { Agent, Dispatcher } from 'undici';
import type * as CacheTypes from 'undici/types/cache-interceptor.d.ts';
import { InFlightTable } from '@proxyd/sync/in-flight';
import { blocklistOf, type Blocklist } from '../policy/blocklist.ts';
import type { SharedStore } from './shared-store.ts';
import { RangeAnswer, wantedRange } from './range-answer.ts';
import type { CacheTrace } from './cache-status.ts';
import { urlHash } from './url-presence.ts';

const require = createRequire(import.meta.url);

interface UndiciCacheHelpers {
  normalizeHeaders(opts: { headers?: unknown }): Record<string, string | string[]>;
  parseCacheControlHeader(value: string | string[]): CacheTypes.default.CacheControlDirectives;
}
let helpers: UndiciCacheHelpers | undefined;
/**
 * undici's own helpers, so that the keys made here are the keys its interceptor makes. Loaded on first
 * use, as undici itself is (worker/lazy-dispatcher.ts): a fresh serving thread holds none of it.
 */
function undiciCache(): UndiciCacheHelpers {
  return (helpers ??= require('undici/lib/util/cache.js') as UndiciCacheHelpers);
}

export interface CacheLayerSetup {
  store: SharedStore;
  inFlight: InFlightTable;
  /** The deny list in force (a reload may change it). */
  deny(): readonly string[];
  /** How long a follower waits for a silent leader before it takes over (ms). */
  patienceMs(): number;
}

/** The request options forward-http.ts dispatches, with the trace that the layers fill in. */
export type TracedOptions = Dispatcher.DispatchOptions & { proxydTrace?: CacheTrace };

/** The dispatcher a serving thread forwards plain HTTP through when the cache is on. */
export function cachingDispatcher(agent: Agent, setup: CacheLayerSetup): Dispatcher {
  const { interceptors } = require('undici') as typeof import('undici');
  const raw: DispatchFn = agent.dispatch.bind(agent);
  const direct = traceOrigin(raw); // to the origin past undici's interceptor, still counted in the trace
  return agent.compose(
    traceOrigin,
    interceptors.cache({ store: setup.store, methods: ['GET', 'HEAD'], type: 'shared' }),
    (next: DispatchFn) => front(next, raw, direct, setup),
  );
}

type DispatchFn = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => boolean;

let denyRules: readonly string[] | undefined;
let denyList: Blocklist = blocklistOf([]);

function denied(setup: CacheLayerSetup, origin: string): boolean {
  const rules = setup.deny();
  return rules.length !== 0 && cacheDenied(rules, new URL(origin).hostname);
}

/** Is `hostname` in --cache-deny's `rules` (a domain and its subdomains)? */
export function cacheDenied(rules: readonly string[], hostname: string): boolean {
  if (rules.length === 0) return false;
  if (rules !== denyRules) {
    denyRules = rules;
    denyList = blocklistOf(rules.map((r) => r.toLowerCase().replace(/\.$/, '')));
  }
  return denyList.match(hostname) !== undefined;
}

/** A request's headers as the cache's keys hold them (undici's normalizeHeaders: lower-case names). */
export function cacheKeyHeaders(headers: string[]): Record<string, string | string[]> {
  return undiciCache().normalizeHeaders({ headers });
}

/**
 * URLs whose last fetch through undici's interceptor (in this thread) brought an answer that may not be
 * stored (no-store, private, Set-Cookie, …), until when. For that long their misses go straight to the
 * origin: not coalesced (that only makes the followers wait for the leader's head and then fetch on
 * their own: a shared-memory join, a wait and a wake-up each, for nothing), and not through undici's
 * interceptor, whose work per request (its handler, the request's and the answer's headers parsed, the
 * store asked to delete) is the miss path's main cost over --cache off, for an answer it will not store.
 * They are still looked up first, so whatever another request stored meanwhile is a hit. The price: an
 * answer that has become storable is stored at the URL's first miss after the window, up to 5 s late
 * per thread, never a wrong answer. Only answers that say so themselves are noted (no-store, private,
 * Set-Cookie): not a 304 to a client's own condition, an error, or an answer to Authorization, which
 * say nothing about the URL's next answers. Bounded by count.
 */
const UNSTORABLE_MS = 5_000;
const UNSTORABLE_URLS = 4096;
const unstorable = new Map<string, number>();

function recentlyUnstorable(url: string): boolean {
  const until = unstorable.get(url);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  unstorable.delete(url);
  return false;
}

function noteUnstorable(url: string): void {
  unstorable.delete(url); // re-inserted: the oldest goes first
  unstorable.set(url, Date.now() + UNSTORABLE_MS);
  if (unstorable.size > UNSTORABLE_URLS) unstorable.delete(unstorable.keys().next().value!);
}

/** The outer layer: decide whether the cache is asked at all, and coalesce misses across threads. */
function front(next: DispatchFn, raw: DispatchFn, direct: DispatchFn, setup: CacheLayerSetup): DispatchFn {
  return (opts, handler) => {
    const trace = (opts as TracedOptions).proxydTrace;
    if (!trace) return next(opts, handler);
    const method = opts.method;
    if (method !== 'GET' && method !== 'HEAD') {
      trace.bypass = true; // unsafe methods still pass undici's interceptor: it invalidates what they change
      return next(opts, handler);
    }
    const origin = String(opts.origin);
    if (denied(setup, origin)) {
      trace.bypass = true;
      return raw(opts, handler);
    }
    const ccValue = cacheControlOf(opts);
    const cc = ccValue !== undefined ? undiciCache().parseCacheControlHeader(ccValue) : undefined;
    if (cc?.['no-store']) {
      trace.bypass = true;
      return next(opts, handler);
    }
    // The key's headers are read only where they matter (a stored entry with a Vary, a Range): a miss of
    // a URL nothing is stored under never builds them.
    const key = new LazyKey(origin, method, opts);
    return ask({ next, direct, setup, opts, handler, trace, key, onlyIfCached: cc?.['only-if-cached'] === true });
  };
}

/** A request's cache key whose headers are normalized on first read (a class: no accessor defined per request). */
class LazyKey implements CacheTypes.default.CacheKey {
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  readonly #opts: Dispatcher.DispatchOptions;
  #headers: Record<string, string | string[]> | undefined;

  constructor(origin: string, method: string, opts: Dispatcher.DispatchOptions) {
    this.origin = origin;
    this.method = method;
    this.path = opts.path;
    this.#opts = opts;
  }

  get headers(): Record<string, string | string[]> {
    return (this.#headers ??= undiciCache().normalizeHeaders(this.#opts));
  }
}

/** The request's Cache-Control value(s), read from the raw header list forward-http.ts gives (any other form: normalized). */
function cacheControlOf(opts: Dispatcher.DispatchOptions): string | string[] | undefined {
  const h = opts.headers;
  if (!Array.isArray(h)) return undiciCache().normalizeHeaders(opts)['cache-control'];
  let found: string[] | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (typeof name === 'string' && name.length === 13 && name.toLowerCase() === 'cache-control') (found ??= []).push(String(h[i + 1]));
  }
  return found === undefined ? undefined : found.length === 1 ? found[0] : found;
}

interface Asking {
  next: DispatchFn;
  /** To the origin past undici's interceptor (traced): for a URL recently unstorable. */
  direct: DispatchFn;
  setup: CacheLayerSetup;
  opts: Dispatcher.DispatchOptions;
  handler: Dispatcher.DispatchHandler;
  trace: CacheTrace;
  key: CacheTypes.default.CacheKey;
  onlyIfCached: boolean;
}

/** Look the key up; a hit (fresh or not) goes on to undici's interceptor, a miss is coalesced. */
function ask(a: Asking): boolean {
  const { store } = a.setup;
  const found = store.lookup(a.key);
  if (found) return answerFromStore(a, found);
  if (a.onlyIfCached) return answerGatewayTimeout(a);
  const url = `${a.key.origin}${a.key.path}`;
  // Past the interceptor, which then asks the store nothing: before a hand-over it would never take.
  if (a.key.method === 'GET' && recentlyUnstorable(url)) return a.direct(a.opts, a.handler);
  // From here on undici's interceptor is asked while nothing is stored: hand it the miss (no second SELECT).
  store.handOver(a.key, undefined);
  if (a.key.method !== 'GET') return a.next(a.opts, a.handler); // a HEAD miss: nothing to share
  const [hi, lo] = urlHash(url);
  const joined = a.setup.inFlight.join(hi, lo);
  switch (joined.role) {
    case 'leader': {
      // Look again (InFlightTable: look, join, look again): a leader may have stored it and left between
      // our look and our join; fetching now would be a second origin fetch for a stored answer.
      const found = a.setup.store.lookup(a.key);
      if (found === undefined) return lead(a, joined);
      a.setup.inFlight.finish(joined, true);
      a.trace.coalesced = true;
      return answerFromStore(a, found);
    }
    case 'full':
      return a.next(a.opts, a.handler);
    case 'done':
      a.trace.coalesced = true;
      return again(a);
    case 'follower':
      void follow(a, joined);
      return true;
  }
}

/** Ask once more after a leader finished: a hit now is a coalesced answer; a miss fetches alone. */
function again(a: Asking): boolean {
  const found = a.setup.store.lookup(a.key);
  if (found) return answerFromStore(a, found);
  a.trace.coalesced = false;
  if (a.onlyIfCached) return answerGatewayTimeout(a);
  a.setup.store.handOver(a.key, undefined);
  return a.next(a.opts, a.handler);
}

async function follow(a: Asking, joined: { slot: number; word: number }): Promise<void> {
  const { inFlight } = a.setup;
  a.trace.abort ??= new AbortController();
  const followed = await inFlight.follow(joined, { patienceMs: a.setup.patienceMs(), signal: a.trace.abort.signal });
  if (followed.role === 'aborted') return; // the client left while waiting; its connection logs that
  try {
    if (followed.role === 'leader') {
      // Taking over: look once more (the old leader may have stored it after all), else fetch.
      const found = a.setup.store.lookup(a.key);
      if (found) {
        inFlight.finish(followed, true);
        a.trace.coalesced = true;
        answerFromStore(a, found);
      } else {
        a.setup.store.handOver(a.key, undefined);
        lead(a, followed);
      }
    }
    else {
      a.trace.coalesced = true;
      again(a);
    }
  } catch (err) {
    a.handler.onResponseError?.(NO_CONTROLLER, err as Error);
  }
}

/**
 * Fetch as the leader; wake the followers when the answer has ended and its store write has closed — or
 * as soon as its head shows that it will not be stored.
 */
function lead(a: Asking, joined: { slot: number; word: number }): boolean {
  const { inFlight, store } = a.setup;
  const url = `${a.key.origin}${a.key.path}`;
  let finished = false;
  const finish = (ok: boolean): void => {
    if (finished) return;
    finished = true;
    // The followers read the store next: publish only once the write (if any) has committed or failed.
    const writing = store.writing(url);
    if (writing) void writing.then(() => inFlight.finish(joined, ok));
    else inFlight.finish(joined, ok);
  };
  const inner = a.handler;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: (c, context) => inner.onRequestStart?.(c, context),
    onRequestUpgrade: (c, s, h, socket) => inner.onRequestUpgrade?.(c, s, h, socket),
    onResponseStart: (c, s, h, m) => {
      // undici's handler opens its store write before it passes the head on: none now means this answer
      // will not be stored, and the followers need not wait for its body — wake them to fetch on their
      // own (else a popular uncacheable URL would be fetched in two waves, leader first).
      if (store.writing(url)) unstorable.delete(url);
      else {
        if (saysUnstorable(h)) noteUnstorable(url);
        finish(true);
      }
      return inner.onResponseStart?.(c, s, h, m);
    },
    onResponseData: (c, chunk) => {
      inFlight.progress(joined); // alive: followers that time out keep waiting
      inner.onResponseData?.(c, chunk);
    },
    onResponseEnd: (c, trailers) => {
      inner.onResponseEnd?.(c, trailers);
      finish(true);
    },
    onResponseError: (c, err) => {
      finish(false); // a follower takes over
      inner.onResponseError?.(c, err);
    },
  };
  try {
    return a.next(a.opts, handler);
  } catch (err) {
    finish(false);
    throw err;
  }
}

/** A stored object: hand the lookup over to undici's interceptor (no second SELECT), with Range if asked. */
function answerFromStore(a: Asking, found: CacheTypes.default.GetResult): boolean {
  const range = a.key.method === 'GET' && found.statusCode === 200 ? wantedRange(a.key.headers) : undefined;
  if (range === undefined) {
    a.setup.store.handOver(a.key, found);
    return a.next(a.opts, a.handler);
  }
  // Ask the interceptor for the whole object (it may revalidate it first) and cut the range out of it.
  const opts = { ...a.opts, headers: withoutRange(a.opts.headers) };
  const key = { ...a.key, headers: undiciCache().normalizeHeaders(opts) };
  a.setup.store.handOver(key, found);
  return a.next(opts, new RangeAnswer(range, a.handler));
}

/** only-if-cached and nothing stored: 504, as RFC 9111 §5.2.1.7 says, without asking the origin. */
function answerGatewayTimeout(a: Asking): boolean {
  a.trace.onlyIfCachedMiss = true;
  const h = a.handler;
  const body = Buffer.from('504 Gateway Timeout: not in the cache, and the request said only-if-cached\n');
  h.onRequestStart?.(NO_CONTROLLER, {});
  h.onResponseStart?.(NO_CONTROLLER, 504, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) }, 'Gateway Timeout');
  h.onResponseData?.(NO_CONTROLLER, body);
  h.onResponseEnd?.(NO_CONTROLLER, {});
  return true;
}

const NO_CONTROLLER: Dispatcher.DispatchController = {
  aborted: false,
  paused: false,
  reason: null,
  abort() {},
  pause() {},
  resume() {},
};

/** Does an answer's head say it may never be stored by a shared cache (no-store, private, Set-Cookie), whoever asks? */
function saysUnstorable(headers: Record<string, string | string[] | undefined>): boolean {
  if (headers['set-cookie'] !== undefined) return true;
  const cc = headers['cache-control'];
  if (cc === undefined) return false;
  const d = undiciCache().parseCacheControlHeader(cc);
  return d['no-store'] === true || d.private !== undefined;
}

function withoutRange(headers: Dispatcher.DispatchOptions['headers']): string[] {
  const list = Array.isArray(headers) ? (headers as string[]) : [];
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() !== 'range') out.push(list[i]!, list[i + 1]!);
  return out;
}

/**
 * Does a request carry If-None-Match or If-Modified-Since? Below undici's interceptor its headers are the
 * object the interceptor normalized (lower-case names); a request that passed it by is the raw list.
 */
function conditional(headers: Dispatcher.DispatchOptions['headers']): boolean {
  if (headers == null) return false;
  if (!Array.isArray(headers)) {
    const h = headers as Record<string, unknown>;
    return h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined;
  }
  for (let i = 0; i < headers.length; i += 2) {
    const name = String(headers[i]);
    if ((name.length === 13 || name.length === 17) && /^if-(none-match|modified-since)$/i.test(name)) return true;
  }
  return false;
}

/** The inner layer: every request that reaches the origin is counted in its trace, with its status. */
function traceOrigin(next: DispatchFn): DispatchFn {
  return (opts, handler) => {
    const trace = (opts as TracedOptions).proxydTrace;
    if (!trace) return next(opts, handler);
    trace.originFetches++;
    if (!trace.clientConditional && conditional(opts.headers)) trace.revalidating = true;
    return next(opts, new TracedHandler(trace, handler));
  };
}

/** Passes everything on, noting the origin's status in the trace (a class: one object per request, no closures). */
class TracedHandler implements Dispatcher.DispatchHandler {
  readonly #trace: CacheTrace;
  readonly #inner: Dispatcher.DispatchHandler;

  constructor(trace: CacheTrace, inner: Dispatcher.DispatchHandler) {
    this.#trace = trace;
    this.#inner = inner;
  }

  onRequestStart(c: Dispatcher.DispatchController, context: unknown): void {
    this.#inner.onRequestStart?.(c, context);
  }

  onRequestUpgrade(c: Dispatcher.DispatchController, status: number, headers: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[2], socket: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>[3]): void {
    this.#inner.onRequestUpgrade?.(c, status, headers, socket);
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, headers: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2], message: string): void {
    this.#trace.originStatus = status;
    this.#inner.onResponseStart?.(c, status, headers, message);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#inner.onResponseData?.(c, chunk);
  }

  onResponseEnd(c: Dispatcher.DispatchController, trailers: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>[1]): void {
    this.#inner.onResponseEnd?.(c, trailers);
  }

  onResponseError(c: Dispatcher.DispatchController, err: Error): void {
    this.#inner.onResponseError?.(c, err);
  }
}

