// The shared memory every thread attaches to: one SharedArrayBuffer per primitive, handed to each
// thread in its workerData. Created once by the primary.
import { Semaphore } from '@proxyd/sync/semaphore';
import { LogRing } from '@proxyd/sync/log-ring';
import { Stats } from '@proxyd/sync/stats';
import { PermitLeases } from '@proxyd/sync/permit-leases';
import { STAT_NAMES, type StatName } from './stats-names.ts';
import { EventLog } from './event-log.ts';
import { WorkerTable } from './worker-table.ts';
import { ParentTable } from '../upstream/parent-table.ts';

export interface SharedBuffers {
  semaphore: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  leases: SharedArrayBuffer;
  workers: SharedArrayBuffer;
  parents: SharedArrayBuffer;
}

export interface SharedState {
  semaphore: Semaphore;
  ring: LogRing;
  stats: Stats<StatName>;
  leases: PermitLeases;
  workers: WorkerTable;
  /** Parent proxies' health and load (upstream/parent-table.ts), one row per --parent. */
  parents: ParentTable;
  log: EventLog;
  buffers: SharedBuffers;
}

/** Leases beyond 2 × permits, for connections whose task has not yet reported its end. */
const LEASE_SLACK = 64;

export function createSharedState(o: { maxClients: number; maxWaiting: number; logRingBytes: number; parents: readonly unknown[] }): SharedState {
  const semaphore = Semaphore.create({ permits: o.maxClients, maxWaiting: o.maxWaiting });
  const ring = LogRing.create(o.logRingBytes);
  const stats = Stats.create(STAT_NAMES);
  const leases = PermitLeases.create(o.maxClients * 2 + LEASE_SLACK);
  return bundle(semaphore, ring, stats, leases, WorkerTable.create(), ParentTable.create(o.parents.length));
}

export function attachSharedState(b: SharedBuffers): SharedState {
  return bundle(new Semaphore(b.semaphore), new LogRing(b.ring), new Stats(b.stats, STAT_NAMES), new PermitLeases(b.leases), new WorkerTable(b.workers), new ParentTable(b.parents, ParentTable.countIn(b.parents)));
}

function bundle(semaphore: Semaphore, ring: LogRing, stats: Stats<StatName>, leases: PermitLeases, workers: WorkerTable, parents: ParentTable): SharedState {
  return {
    semaphore,
    ring,
    stats,
    leases,
    workers,
    parents,
    log: new EventLog(ring, () => stats.get('logLevel')),
    buffers: { semaphore: semaphore.buffer, ring: ring.buffer, stats: stats.buffer, leases: leases.buffer, workers: workers.buffer, parents: parents.buffer },
  };
}
