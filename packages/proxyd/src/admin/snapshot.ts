// One picture of the proxy's state, read from shared memory (every thread's work counts): what
// /api/stats returns and /api/events streams once a second.
import type { ProxyView } from './proxy-view.ts';

export function snapshot(proxy: ProxyView) {
  const { semaphore, ring, stats, workers } = proxy.shared;
  const { nowServing, nextTicket } = semaphore.tickets;
  const summary = proxy.summary();
  return {
    time: Date.now(),
    stats: stats.snapshot(),
    semaphore: {
      permits: semaphore.permits,
      held: semaphore.held,
      free: semaphore.free,
      waiting: semaphore.waiting,
      maxWaiting: semaphore.maxWaiting,
      nowServing,
      nextTicket,
      admitted: semaphore.admittedTotal,
      mutexContention: semaphore.contention,
    },
    ring: { capacity: ring.capacity, usedBytes: ring.usedBytes, written: ring.written, dropped: ring.dropped, mutexContention: ring.contention },
    workers: workers.rows(),
    cache: cacheReadings(proxy),
    topHosts: summary.topHosts,
    topClients: summary.topClients,
    recent: summary.recent,
    // Parent proxies (--parent): state and load from the shared table, by name (never the URL).
    parents: proxy.options.parents.map((p, i) => ({ name: p.name, weight: p.weight, ...proxy.shared.parents.read(i) })),
    limits: { bans: proxy.limits.bans().slice(0, 20), hottest: proxy.limits.hottest(10) },
  };
}

export type Snapshot = ReturnType<typeof snapshot>;

/** The cache in numbers: hit ratios by request and by byte, what the store holds, coalescing now. */
export function cacheReadings(proxy: ProxyView) {
  const { stats, inFlight } = proxy.shared;
  const fromStore = stats.get('cacheHits') + stats.get('cacheCoalesced') + stats.get('cacheRevalidated') + stats.get('cacheStale');
  const asked = fromStore + stats.get('cacheMisses');
  const hitBytes = stats.get('cacheHitBytes');
  const bytes = hitBytes + stats.get('cacheMissBytes');
  return {
    on: proxy.options.cache === 'on',
    maxBytes: proxy.options.cacheMaxBytes,
    /** Of the requests the cache was asked about (not BYPASS), the share answered from the store. */
    requestHitRatio: asked === 0 ? 0 : fromStore / asked,
    byteHitRatio: bytes === 0 ? 0 : hitBytes / bytes,
    ...inFlight.snapshot(),
  };
}

/**
 * What the charts need of a snapshot, in the same shape (time, stats.*, semaphore.*): one a second is
 * kept for the last minute (history.ts) and sent to a dashboard when it connects. Counters, not rates:
 * the page divides the difference of two consecutive points by their time apart.
 */
export function chartPoint(proxy: ProxyView) {
  const { semaphore, stats } = proxy.shared;
  return {
    time: Date.now(),
    stats: {
      requests: stats.get('requests'),
      allowed: stats.get('allowed'),
      blocked: stats.get('blocked'),
      bytesUp: stats.get('bytesUp'),
      bytesDown: stats.get('bytesDown'),
      rateLimited: stats.get('rateLimited'),
      limiterCasRetries: stats.get('limiterCasRetries'),
    },
    semaphore: { held: semaphore.held, waiting: semaphore.waiting, permits: semaphore.permits },
  };
}

export type ChartPoint = ReturnType<typeof chartPoint>;
