/**
 * /metrics in the Prometheus text format, through prom-client. Every value is read from shared memory
 * at scrape time (custom collect()), so the work of every thread counts and nothing is sampled on the
 * serving path. Names follow Prometheus conventions: proxyd_ prefix, _total for counters, base units.
 */
import client from 'prom-client';
import type { ProxyView } from './proxy-view.ts';
import type { StatName } from '../memory/stats-names.ts';
import { cacheReadings } from './snapshot.ts';
import { registerParentMetrics } from './parent-metrics.ts';

export function createMetrics(proxy: ProxyView): client.Registry {
  const registry = new client.Registry();
  const { stats, semaphore, ring, workers } = proxy.shared;
  const counter = (name: string, help: string, stat: StatName) =>
    new client.Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(stats.get(stat));
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  const labelled = (name: string, help: string, label: string, values: Record<string, StatName>) =>
    new client.Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, stat] of Object.entries(values)) this.inc({ [label]: value }, stats.get(stat));
      },
    });

  gauge('proxyd_clients_active', 'Client connections holding a permit', () => semaphore.held);
  gauge('proxyd_clients_waiting', 'Client connections waiting for a permit', () => semaphore.waiting);
  gauge('proxyd_permits', 'Semaphore permits (--max-clients)', () => semaphore.permits);
  gauge('proxyd_tunnels_open', 'Open CONNECT tunnels', () => stats.get('tunnels'));
  counter('proxyd_connections_accepted_total', 'TCP connections accepted', 'accepted');
  counter('proxyd_connections_denied_total', 'Connections refused at accept (client ACL)', 'clientsDenied');
  counter('proxyd_proxy_protocol_refused_total', 'Connections refused with --proxy-protocol on: not from a balancer, or no valid PROXY header in time', 'proxyProtocolRefused');
  counter('proxyd_semaphore_waits_total', 'Connections that had to wait for a permit', 'queued');
  counter('proxyd_queue_timeouts_total', 'Waiters refused 503 after --queue-timeout', 'queueTimeouts');
  counter('proxyd_queue_full_total', 'Connections refused 503 with the waiting queue full', 'queueFull');
  counter('proxyd_idle_releases_total', 'Connections closed after --idle-timeout', 'idleReleases');
  counter('proxyd_idle_yields_total', 'Idle keep-alive connections closed to let waiters in', 'idleYields');
  counter('proxyd_worker_errors_total', 'Connections lost to a worker thread that died', 'workerErrors');
  counter('proxyd_bytes_received_total', 'Bytes from clients (client → upstream)', 'bytesUp');
  counter('proxyd_bytes_sent_total', 'Bytes to clients (upstream → client)', 'bytesDown');
  labelled('proxyd_requests_total', 'Requests by method', 'method', { GET: 'methodGet', POST: 'methodPost', HEAD: 'methodHead', CONNECT: 'methodConnect', other: 'methodOther' });
  labelled('proxyd_request_decisions_total', 'Requests by decision', 'decision', { allowed: 'allowed', blocked: 'blocked', denied: 'authFailures', error: 'upstreamErrors', bad_request: 'badRequests' });
  labelled('proxyd_responses_total', 'Answers by status class', 'code', { '1xx': 'status1xx', '2xx': 'status2xx', '3xx': 'status3xx', '4xx': 'status4xx', '5xx': 'status5xx' });
  labelled('proxyd_upstream_errors_total', 'Upstream errors by kind', 'kind', { refused: 'upstreamRefused', dns: 'upstreamDns', timeout: 'upstreamTimeout', reset: 'upstreamReset', other: 'upstreamOther' });
  registerParentMetrics(registry, proxy);
  // Per client, but bounded: the dashboard's ten busiest clients (counted by the logger thread), so that
  // a scrape names clients by address (the real ones, behind a balancer) without a series per address.
  new client.Gauge({
    name: 'proxyd_top_client_requests',
    help: "Requests, tunnels and refusals of the 10 busiest client addresses since start (the dashboard's top clients)",
    labelNames: ['client'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [address, requests] of proxy.summary().topClients) this.set({ client: address }, requests);
    },
  });
  counter('proxyd_requests_limited_total', 'Requests answered 429 over --rate-limit', 'rateLimited');
  labelled('proxyd_connections_refused_total', 'Connections refused at accept by a per-client limit or a ban', 'reason', { conn_rate: 'connRateRefused', max_conns: 'connCapRefused', banned: 'bannedRefused' });
  counter('proxyd_fd_budget_refused_total', 'Connections refused 503 at accept: no room left under the open-file limit', 'fdBudgetRefused');
  counter('proxyd_upstream_idle_closed_total', 'Idle pooled upstream sockets closed near the open-file limit, so that clients keep their descriptors', 'upstreamIdleClosed');
  gauge('proxyd_open_files_limit', 'The process open-file limit (RLIMIT_NOFILE) read at start; 0 when not known', () => stats.get('openFileLimit'));
  counter('proxyd_limiter_cas_retries_total', 'GCRA compare-and-swap retries: races lost on one key between threads', 'limiterCasRetries');
  labelled('proxyd_bans_total', 'Bans begun, by detector', 'detector', { scan: 'bansScan', 'auth-failures': 'bansAuthFailures', 'bad-requests': 'bansBadRequests', refusals: 'bansRefusals', errors: 'bansErrors', 'rate-limited': 'bansRateLimited' });
  gauge('proxyd_bans_active', 'Bans in force now', () => proxy.limits.bans().length);
  if (proxy.options.redis) {
    // --redis (primary/fleet-bridge.ts): only then, so that without it /metrics is as it was.
    gauge('proxyd_fleet_store_up', 'The fleet store (--redis) is reachable: 1; 0 while limiting locally only', () => stats.get('fleetStoreUp'));
    counter('proxyd_fleet_errors_total', 'Fleet store errors: failed commands and lost connections', 'fleetErrors');
    labelled('proxyd_fleet_bans_total', 'Bans shared through the fleet store', 'direction', { published: 'fleetBansPublished', applied: 'fleetBansApplied' });
    counter('proxyd_fleet_rate_limited_total', 'Requests answered 429 because the fleet total was over --rate-limit', 'fleetRateLimited');
  }
  labelled('proxyd_cache_requests_total', 'Plain-HTTP requests by what the cache did (the tag in the log)', 'result', {
    hit: 'cacheHits',
    coalesced: 'cacheCoalesced',
    revalidated: 'cacheRevalidated',
    stale: 'cacheStale',
    miss: 'cacheMisses',
    bypass: 'cacheBypass',
  });
  counter('proxyd_cache_direct_hits_total', 'Of the hits, those answered plainly fresh by the serving thread itself, without undici’s cache interceptor', 'cacheHitsDirect');
  labelled('proxyd_cache_sent_bytes_total', 'Body bytes sent to clients, from the cache or from the origin (on a miss)', 'source', { cache: 'cacheHitBytes', origin: 'cacheMissBytes' });
  gauge('proxyd_cache_request_hit_ratio', 'Share of cache-eligible requests answered from the cache (hit, coalesced, revalidated, stale)', () => cacheReadings(proxy).requestHitRatio);
  gauge('proxyd_cache_byte_hit_ratio', 'Share of cache-eligible body bytes sent from the cache', () => cacheReadings(proxy).byteHitRatio);
  gauge('proxyd_cache_entries', 'Objects in the shared cache', () => stats.get('cacheEntries'));
  gauge('proxyd_cache_stored_bytes', 'Body bytes in the shared cache', () => stats.get('cacheBytes'));
  gauge('proxyd_cache_max_bytes', 'The cache size cap (--cache-size)', () => proxy.options.cacheMaxBytes);
  counter('proxyd_cache_evictions_total', 'Entries evicted to stay under --cache-size', 'cacheEvictions');
  counter('proxyd_cache_purges_total', 'Entries removed by PURGE', 'cachePurges');
  counter('proxyd_cache_errors_total', 'Cache store operations that failed and were bypassed', 'cacheErrors');
  gauge('proxyd_cache_in_flight', 'URLs being fetched now by a coalescing leader', () => proxy.shared.inFlight.snapshot().inFlight);
  gauge('proxyd_cache_followers_waiting', 'Requests waiting now for another request’s fetch of the same URL', () => proxy.shared.inFlight.snapshot().waiting);
  new client.Counter({
    name: 'proxyd_cache_coalesced_followers_total',
    help: 'Requests that waited for another request’s fetch of the same URL instead of fetching it',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(proxy.shared.inFlight.snapshot().followers);
    },
  });
  new client.Counter({
    name: 'proxyd_cache_takeovers_total',
    help: 'Times a waiting request took over the fetch from a leader that failed or went silent',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(proxy.shared.inFlight.snapshot().takeovers);
    },
  });
  gauge('proxyd_log_ring_used_bytes', 'Bytes in the log ring not yet written out', () => ring.usedBytes);
  gauge('proxyd_log_ring_capacity_bytes', 'Log ring size', () => ring.capacity);
  new client.Counter({
    name: 'proxyd_log_records_dropped_total',
    help: 'Log records dropped because the ring was full',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(ring.dropped);
    },
  });
  new client.Counter({
    name: 'proxyd_mutex_contended_total',
    help: 'Times a thread found a mutex taken',
    labelNames: ['mutex'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ mutex: 'log_ring' }, ring.contention);
      this.inc({ mutex: 'semaphore' }, semaphore.contention);
    },
  });
  new client.Gauge({
    name: 'proxyd_worker_connections',
    help: 'Open client connections per serving thread (thread 0 row: the primary)',
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of workers.rows()) this.set({ thread: String(row.threadId) }, row.connections);
    },
  });
  new client.Gauge({
    name: 'proxyd_event_loop_delay_p99_seconds',
    help: 'Event-loop delay per thread: how late its timers fired (the sampling interval subtracted, ~0 when idle), 99th percentile over the last second',
    labelNames: ['thread'],
    registers: [registry],
    collect() {
      this.reset();
      for (const row of workers.rows()) this.set({ thread: String(row.threadId) }, row.loopDelayP99Ms / 1000);
    },
  });
  // The wait-time histogram is kept by the primary (cumulative bucket counts); prom-client formats it.
  registry.registerMetric({
    name: 'proxyd_semaphore_wait_seconds',
    help: 'Time connections waited for a permit',
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const w = proxy.waits;
      const name = 'proxyd_semaphore_wait_seconds';
      return {
        name,
        help: 'Time connections waited for a permit',
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...w.bucketsSeconds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: w.counts[i]! })),
          { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: w.count },
          { metricName: `${name}_sum`, labels: {}, value: w.sumSeconds },
          { metricName: `${name}_count`, labels: {}, value: w.count },
        ],
      };
    },
  } as unknown as client.Metric);
  return registry;
}
