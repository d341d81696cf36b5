/**
 * A plainly fresh hit, answered here: a GET or HEAD that asks for nothing but a stored answer
 * (cache/plain-hit.ts), whose current entry this thread remembers (SharedStore.current: which entry is
 * current is known from shared memory while the URL's generation is unchanged, the entry itself from
 * this thread's memo) and is fresh. Everything else — a miss, a stale or large entry, a request with its
 * own directives, conditions or Range — goes the long way, through undici's interceptor
 * (cache/cache-layer.ts), which is where the semantics live; this answer is the one the interceptor's
 * sendCachedValue would give, without its stream replay, its handler chain and its header conversions.
 *
 * The head is prepared once per entry (its stored headers, Age's place, Cache-Status, our Via) and only
 * Age is filled in per answer; head and body go out in one write (ServerResponse corks the socket for
 * end(), so one writev). The request is logged and counted as the long way logs and counts a HIT.
 */
import type http from 'node:http';
import type { ConnectionInfo, ServeContext } from './context.ts';
import { forwardedHeaders } from './headers.ts';
import { countStatus } from './refuse.ts';
import { cacheDenied, cacheKeyHeaders } from '../cache/cache-layer.ts';
import { ageAt, asksPlainly, plainlyFresh } from '../cache/plain-hit.ts';
import { cacheStatusHeader, countCacheTag, newTrace } from '../cache/cache-status.ts';
import type { RememberedEntry } from '../cache/shared-store.ts';
import { endAfterResponse } from './idle-connections.ts';

const HIT_STATUS = cacheStatusHeader('HIT', newTrace(false));

/** An entry's answer head: [name, value, …] with Age's value at `ageAt`, for our Via token. */
interface PreparedHead {
  viaToken: string;
  headers: string[];
  ageAt: number;
  body: Buffer;
}

/** True when answered here; false: nothing was done, take the long way. */
export function answerPlainHit(ctx: ServeContext, conn: ConnectionInfo, req: http.IncomingMessage, res: http.ServerResponse, url: URL, originForm: string): boolean {
  const cache = ctx.cache!;
  const method = req.method!;
  if (!asksPlainly(req.rawHeaders)) return false;
  // A request routed through a parent proxy does not use the cache (forward-http.ts): nor here.
  if (ctx.parents.enabled && ctx.parents.usesParents(url.hostname)) return false;
  const entry = cache.store.current(new HitKey(url, method, originForm, req.rawHeaders, ctx.viaToken));
  const now = Date.now();
  if (entry === undefined || !plainlyFresh(entry.result, now)) return false;
  if (cacheDenied(ctx.options.cacheDeny, url.hostname)) return false; // denied since it was stored (a reload): the long way bypasses

  const head = prepared(entry, ctx.viaToken);
  const { stats, log } = ctx.shared;
  const { statusCode, statusMessage } = entry.result;
  const started = performance.now();
  const down = method === 'HEAD' ? 0 : head.body.length;
  countStatus(stats, statusCode);
  stats.add('cacheHitsDirect');
  // Clients are queued for a permit (end this connection after the response and let one in), or stopping.
  if (endAfterResponse(ctx)) res.shouldKeepAlive = false;
  head.headers[head.ageAt] = String(ageAt(entry.result, now)); // this thread's array, read at once by writeHead
  res.writeHead(statusCode, statusMessage, head.headers);
  if (down === 0) res.end();
  else res.end(head.body);
  // 'close' comes once for a response: on() spares once()'s wrapper.
  res.on('close', () => {
    countCacheTag(stats, 'HIT', down);
    stats.add('allowed');
    log.write({
      event: 'request',
      conn: conn.id,
      client: conn.client,
      method,
      url: req.url,
      status: statusCode,
      cut: res.writableFinished ? undefined : true,
      up: 0,
      down,
      ms: Math.round((performance.now() - started) * 10) / 10,
      cache: 'HIT',
    });
  });
  return true;
}

/**
 * The cache key of a hit: only an entry with a Vary reads `headers` (the request's headers as the long
 * way would forward them), so they are made on first read. A class, not an object literal with a getter:
 * no accessor defined and no closure made per request.
 */
class HitKey {
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  readonly #url: URL;
  readonly #rawHeaders: string[];
  readonly #viaToken: string;
  #headers: Record<string, string | string[]> | undefined;

  constructor(url: URL, method: string, path: string, rawHeaders: string[], viaToken: string) {
    this.origin = url.origin;
    this.method = method;
    this.path = path;
    this.#url = url;
    this.#rawHeaders = rawHeaders;
    this.#viaToken = viaToken;
  }

  get headers(): Record<string, string | string[]> {
    return (this.#headers ??= cacheKeyHeaders(forwardedHeaders(this.#rawHeaders, { viaToken: this.#viaToken, host: this.#url.host })));
  }
}

/** The entry's prepared head (made at its first answer here, kept with the remembered entry). */
function prepared(entry: RememberedEntry, viaToken: string): PreparedHead {
  const known = entry.prepared as PreparedHead | undefined;
  if (known !== undefined && known.viaToken === viaToken) return known;
  const { result } = entry;
  // As sendCachedValue makes it: the stored headers, then age (undici stores none); then Cache-Status,
  // and our Via as forward-http.ts adds it to every answer (hop-by-hop headers dropped on the way).
  const raw: string[] = [];
  for (const [name, value] of Object.entries({ ...result.headers, age: '0' })) {
    for (const v of Array.isArray(value) ? value : [value]) raw.push(name, String(v));
  }
  raw.push('Cache-Status', HIT_STATUS);
  const headers = forwardedHeaders(raw, { viaToken });
  let at = -1;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'age') at = i + 1;
  if (at < 0) throw new Error('the prepared head lost its Age');
  const chunks = (result.body ?? []) as Buffer[];
  const head: PreparedHead = { viaToken, headers, ageAt: at, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
  entry.prepared = head;
  return head;
}
