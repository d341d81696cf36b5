/**
 * When a request may be answered from a stored entry without undici's interceptor: the plainly fresh
 * hit, the common case of a cache in front of many machines (worker/answer-hit.ts answers it). These
 * checks are the interceptor's own for that case (undici 7.30 lib/interceptor/cache.js, handleResult:
 * neither stale nor in need of revalidation → sendCachedValue), so a request answered here gets the
 * answer the interceptor would have given; anything else goes the long way, through cache-layer.ts.
 *
 * RFC 9111 §4: a cache may answer from a stored response without contacting the origin when the URL
 * and method match (HEAD is answered from a stored GET), the Vary'd request headers match, the response
 * is fresh, and neither the request nor the response asks for revalidation (no-cache). The request may
 * say more that only the long way handles, and then it takes that way: its own Cache-Control or Pragma
 * (max-age=0, no-cache, no-store, min-fresh, max-stale, only-if-cached), conditions (If-None-Match,
 * If-Modified-Since, If-Match, If-Unmodified-Since, If-Range), Range, a body, and Authorization (rare
 * through a proxy, and the interceptor's stored decisions about it stay the only ones).
 */
import type * as CacheTypes from 'undici/types/cache-interceptor.d.ts';

/** Request headers that send a request the long way (lower case). */
const LONG_WAY = new Set([
  'cache-control',
  'pragma',
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'authorization',
  'content-length',
  'transfer-encoding',
]);

/** The lengths of LONG_WAY's names: a header name of another length is never lower-cased (no copy per header). */
const LONG_WAY_LENGTHS = new Set([...LONG_WAY].map((name) => name.length));

/** Does this request (its raw headers) ask for nothing but a stored answer, if there is a fresh one? */
export function asksPlainly(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (LONG_WAY_LENGTHS.has(name.length) && LONG_WAY.has(name.toLowerCase())) return false;
  }
  return true;
}

/** May `result` be sent as it is at `now`: fresh, no revalidation asked, nothing a shared cache may not send? */
export function plainlyFresh(result: CacheTypes.default.GetResult, now: number): boolean {
  if (now > result.staleAt || now > result.deleteAt) return false; // stale: the interceptor revalidates or serves stale
  const noCache = result.cacheControlDirectives?.['no-cache'];
  if (noCache === true) return false; // an unqualified no-cache: revalidate every time
  // A shared cache never sends a stored Set-Cookie (the interceptor deletes such an entry).
  return !Object.hasOwn(result.headers, 'set-cookie');
}

/** The Age of an answer sent at `now` (RFC 9111 §5.1), as the interceptor computes it. */
export function ageAt(result: CacheTypes.default.GetResult, now: number): number {
  return Math.round((now - result.cachedAt) / 1000);
}
