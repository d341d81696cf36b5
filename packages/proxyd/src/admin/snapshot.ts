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
    topHosts: summary.topHosts,
    topClients: summary.topClients,
    recent: summary.recent,
  };
}

export type Snapshot = ReturnType<typeof snapshot>;
