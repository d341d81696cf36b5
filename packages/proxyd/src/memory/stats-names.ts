// The shared counters and gauges, by name. Every thread attaches Stats with this same list.
export const STAT_NAMES = [
  // gauges
  'active', // connections holding a permit
  'waiting', // connections waiting for a permit
  'tunnels', // open CONNECT tunnels
  'workersStarted', // serving threads that have attached (replacements of dead workers count too)
  'logLevel', // least severe level written (0 error … 3 debug): events below it are not even encoded
  'cacheEntries', // objects in the shared cache
  'cacheBytes', // body bytes in the shared cache (the size cap is checked against this)
  'fleetStoreUp', // --redis: 1 while the fleet store is reachable, 0 while limiting locally only
  'draining', // 1 from SIGTERM/SIGINT on: serving threads end keep-alive connections (worker/idle-connections.ts)
  'openFileLimit', // the process's open-file limit read at start (0: not known, no budget; primary/fd-budget.ts)
  // counters
  'accepted', // TCP connections accepted
  'clientsDenied', // refused: address outside --allow-client (at accept; behind a balancer, after the PROXY header)
  'proxyProtocolRefused', // --proxy-protocol: not a balancer, or no valid PROXY header in time
  'authFailures', // requests without valid proxy credentials
  'admitted', // connections that got a permit
  'queued', // connections that had to wait for a permit
  'queueFull', // refused at once: waiting queue full
  'queueTimeouts', // refused after waiting --queue-timeout
  'requests', // HTTP requests and CONNECTs received
  'allowed', // requests forwarded
  'blocked', // requests refused by the blocklist or port policy
  'badRequests', // origin-form, malformed
  'upstreamErrors', // 502/504
  'idleReleases', // closed after --idle-timeout without traffic
  'idleYields', // idle keep-alive connections closed to let waiting clients in
  'workerErrors', // connections lost to a worker that died
  'rateLimited', // requests answered 429: over --rate-limit
  'connRateRefused', // connections refused at accept: over --conn-rate
  'connCapRefused', // connections refused at accept: --max-conns-per-client open already
  'bannedRefused', // connections from a banned client, closed at accept
  'fdBudgetRefused', // connections refused at accept (503): the open-file limit had no room for them
  'upstreamIdleClosed', // idle pooled upstream sockets closed to keep descriptors for clients (worker/idle-upstreams.ts)
  'limiterCasRetries', // GCRA compare-and-swap retries (lost races on one key)
  'bans', // bans begun
  'bansScan', // … by detector
  'bansAuthFailures',
  'bansBadRequests',
  'bansRefusals',
  'bansErrors',
  'bansRateLimited', // a client that kept sending after its 429s
  'fleetBansPublished', // --redis: bans made here and sent to the fleet store
  'fleetBansApplied', // --redis: bans from other instances applied here
  'fleetRateLimited', // --redis: requests answered 429 because the fleet's total was over --rate-limit
  'fleetErrors', // --redis: failed store commands and lost connections
  'bytesUp', // client → upstream
  'bytesDown', // upstream → client
  // the cache: one tag per plain-HTTP request (cache-status.ts)
  'cacheHits', // HIT: answered from the store, fresh
  'cacheHitsDirect', // of those, answered by the worker itself, without undici's interceptor (worker/answer-hit.ts)
  'cacheCoalesced', // COALESCED: waited for another request's fetch and answered from its result
  'cacheRevalidated', // REVALIDATED: the origin said 304, answered from the store
  'cacheStale', // STALE: answered stale (stale-while-revalidate, stale-if-error)
  'cacheMisses', // MISS: fetched from the origin
  'cacheBypass', // BYPASS: the cache was not asked (not GET/HEAD, no-store, --cache-deny)
  'cacheHitBytes', // body bytes sent to clients from the store (HIT, COALESCED, REVALIDATED, STALE)
  'cacheMissBytes', // body bytes sent to clients from the origin on a MISS
  'cacheEvictions', // entries evicted to keep under --cache-size
  'cachePurges', // entries removed by PURGE
  'cacheErrors', // store operations that failed (logged once per thread) and were bypassed
  // requests by method
  'methodGet',
  'methodPost',
  'methodHead',
  'methodConnect',
  'methodOther',
  // answers by status class (forwarded and refusals alike)
  'status1xx',
  'status2xx',
  'status3xx',
  'status4xx',
  'status5xx',
  // upstream errors by kind
  'upstreamRefused',
  'upstreamDns',
  'upstreamTimeout',
  'upstreamReset',
  'upstreamOther',
] as const;

export type StatName = (typeof STAT_NAMES)[number];

export function methodStat(method: string | undefined): StatName {
  switch (method) {
    case 'GET':
      return 'methodGet';
    case 'POST':
      return 'methodPost';
    case 'HEAD':
      return 'methodHead';
    case 'CONNECT':
      return 'methodConnect';
    default:
      return 'methodOther';
  }
}

export function statusStat(status: number): StatName | undefined {
  const cls = Math.floor(status / 100);
  return cls >= 1 && cls <= 5 ? (`status${cls}xx` as StatName) : undefined;
}

export function upstreamErrorStat(code: string): StatName {
  if (code === 'ECONNREFUSED') return 'upstreamRefused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'upstreamDns';
  if (code === 'ETIMEDOUT' || code === 'UPSTREAM_TIMEOUT') return 'upstreamTimeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'upstreamReset';
  return 'upstreamOther';
}
