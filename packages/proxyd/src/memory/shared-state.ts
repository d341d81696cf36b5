// The shared memory every thread attaches to: one SharedArrayBuffer per primitive, handed to each
// thread in its workerData. Created once by the primary.
import { Semaphore } from '@proxyd/sync/semaphore';
import { LogRing } from '@proxyd/sync/log-ring';
import { Stats } from '@proxyd/sync/stats';
import { PermitLeases } from '@proxyd/sync/permit-leases';
import { InFlightTable } from '@proxyd/sync/in-flight';
import { STAT_NAMES, type StatName } from './stats-names.ts';
import { EventLog } from './event-log.ts';
import { WorkerTable } from './worker-table.ts';
import { ParentTable } from '../upstream/parent-table.ts';
import { attachLimitTables, createLimitTables, type LimitTables } from './limit-tables.ts';
import { UrlPresence } from '../cache/url-presence.ts';

export interface SharedBuffers {
  semaphore: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  leases: SharedArrayBuffer;
  workers: SharedArrayBuffer;
  parents: SharedArrayBuffer;
  clients: SharedArrayBuffer;
  bans: SharedArrayBuffer;
  inFlight: SharedArrayBuffer;
  cachePresence: SharedArrayBuffer;
}

export interface SharedState {
  semaphore: Semaphore;
  ring: LogRing;
  stats: Stats<StatName>;
  leases: PermitLeases;
  workers: WorkerTable;
  /** Parent proxies' health and load (upstream/parent-table.ts), one row per --parent. */
  parents: ParentTable;
  /** Per-client limits and detectors, and bans (limit-tables.ts). */
  limits: LimitTables;
  /** The cache's URLs being fetched now, and who waits for them (coalescing across threads). */
  inFlight: InFlightTable;
  /** Which URLs the cache may hold: a lookup of one that cannot be there skips the store. */
  cachePresence: UrlPresence;
  log: EventLog;
  buffers: SharedBuffers;
}

/** URLs that may be in flight at once; a miss beyond them is fetched without coalescing (~24 bytes each). */
const IN_FLIGHT_SLOTS = 4096;

/** Leases beyond 2 × permits, for connections whose task has not yet reported its end. */
const LEASE_SLACK = 64;

export function createSharedState(o: { maxClients: number; maxWaiting: number; logRingBytes: number; parents: readonly unknown[] }): SharedState {
  const semaphore = Semaphore.create({ permits: o.maxClients, maxWaiting: o.maxWaiting });
  const ring = LogRing.create(o.logRingBytes);
  const stats = Stats.create(STAT_NAMES);
  const leases = PermitLeases.create(o.maxClients * 2 + LEASE_SLACK);
  return bundle(semaphore, ring, stats, leases, WorkerTable.create(), createLimitTables(), ParentTable.create(o.parents.length), InFlightTable.create(IN_FLIGHT_SLOTS), UrlPresence.create());
}

export function attachSharedState(b: SharedBuffers): SharedState {
  return bundle(new Semaphore(b.semaphore), new LogRing(b.ring), new Stats(b.stats, STAT_NAMES), new PermitLeases(b.leases), new WorkerTable(b.workers), attachLimitTables(b), new ParentTable(b.parents, ParentTable.countIn(b.parents)), new InFlightTable(b.inFlight), new UrlPresence(b.cachePresence));
}

function bundle(semaphore: Semaphore, ring: LogRing, stats: Stats<StatName>, leases: PermitLeases, workers: WorkerTable, limits: LimitTables, parents: ParentTable, inFlight: InFlightTable, cachePresence: UrlPresence): SharedState {
  return {
    semaphore,
    ring,
    stats,
    leases,
    workers,
    limits,
    parents,
    inFlight,
    cachePresence,
    log: new EventLog(ring, () => stats.get('logLevel')),
    buffers: { semaphore: semaphore.buffer, ring: ring.buffer, stats: stats.buffer, leases: leases.buffer, workers: workers.buffer, clients: limits.clients.buffer, bans: limits.bans.buffer, parents: parents.buffer, inFlight: inFlight.buffer, cachePresence: cachePresence.buffer },
  };
}
