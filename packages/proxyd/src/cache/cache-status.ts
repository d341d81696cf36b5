// What the cache did for one request: the trace the layers fill in (cache-layer.ts), the tag it is
// logged with — in the spirit of Squid's TCP_HIT / TCP_MISS / TCP_REFRESH_UNMODIFIED — and the
// Cache-Status header (RFC 9211) the client sees.

import type { Stats } from '@proxyd/sync/stats';
import type { StatName } from '../memory/stats-names.ts';

export type CacheTag = 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE' | 'COALESCED' | 'BYPASS';

export interface CacheTrace {
  /** Requests that went to the origin for this one (0: answered from the store). */
  originFetches: number;
  /** The origin was asked to revalidate a stored answer (conditional headers the client did not send). */
  revalidating: boolean;
  /** The status of the last origin answer. */
  originStatus: number;
  /** The client's request was conditional itself. */
  readonly clientConditional: boolean;
  /** Waited for another request's fetch (any thread) and was answered from its result. */
  coalesced: boolean;
  /** The cache was not asked: not GET/HEAD, no-store, a denied domain. */
  bypass: boolean;
  /** only-if-cached and nothing stored: answered 504 here. */
  onlyIfCachedMiss: boolean;
  /** Set while a follower waits: aborted when its client leaves. */
  abort?: AbortController;
}

export function newTrace(clientConditional: boolean): CacheTrace {
  return { originFetches: 0, revalidating: false, originStatus: 0, clientConditional, coalesced: false, bypass: false, onlyIfCachedMiss: false };
}

/**
 * The tag, once the answer's head is known. `servedStale`: the answer carries undici's stale marker
 * (Warning: 110), which it sets on stale-while-revalidate, stale-if-error, and a revalidated answer.
 */
export function cacheTag(trace: CacheTrace, servedStale: boolean): CacheTag {
  if (trace.bypass) return 'BYPASS';
  if (trace.onlyIfCachedMiss) return 'MISS';
  if (trace.originFetches === 0) return servedStale ? 'STALE' : trace.coalesced ? 'COALESCED' : 'HIT';
  if (trace.revalidating && servedStale) return trace.originStatus === 304 ? 'REVALIDATED' : 'STALE';
  return 'MISS';
}

/** The Cache-Status header value (RFC 9211) for a tag. */
export function cacheStatusHeader(tag: CacheTag, trace: CacheTrace): string {
  switch (tag) {
    case 'HIT':
      return 'proxyd; hit';
    case 'COALESCED':
      return 'proxyd; hit; detail=coalesced';
    case 'STALE':
      return trace.originFetches > 0 ? `proxyd; hit; fwd=stale; fwd-status=${trace.originStatus}; detail=stale-if-error` : 'proxyd; hit; detail=stale-while-revalidate';
    case 'REVALIDATED':
      return 'proxyd; fwd=stale; fwd-status=304';
    case 'MISS':
      return trace.onlyIfCachedMiss ? 'proxyd; fwd=miss; detail=only-if-cached' : `proxyd; fwd=${trace.revalidating ? 'stale' : 'uri-miss'}; fwd-status=${trace.originStatus}`;
    case 'BYPASS':
      return 'proxyd; fwd=bypass';
  }
}

const TAG_STATS = { HIT: 'cacheHits', COALESCED: 'cacheCoalesced', REVALIDATED: 'cacheRevalidated', STALE: 'cacheStale', MISS: 'cacheMisses', BYPASS: 'cacheBypass' } as const;

/** Count an answered request by its tag, and its bytes as hit or miss bytes. */
export function countCacheTag(stats: Stats<StatName>, tag: CacheTag, bytes: number): void {
  stats.add(TAG_STATS[tag]);
  if (tag === 'MISS') stats.add('cacheMissBytes', bytes);
  else if (tag !== 'BYPASS') stats.add('cacheHitBytes', bytes);
}
