// What the admin server may see of the running proxy: a narrow, read-only view. The admin server reads
// shared memory (every thread's counters), the primary's wait histogram and the logger's summary; it
// cannot release a permit, write a log record or reach the primary's internals. The primary's
// RunningProxy satisfies this shape; the CLI hands it over. Serving never depends on admin/, and admin/
// imports nothing from primary/.
import type { ProxyOptions } from '../config/options.ts';
import type { AnalyticsRange, AnalyticsReport, LogSummary } from '../messages/logger-messages.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { Users } from '../policy/htpasswd.ts';
import type { ClientLimits } from '../limits/client-limits.ts';

type SemaphoreReadings = Pick<SharedState['semaphore'], 'permits' | 'held' | 'free' | 'waiting' | 'maxWaiting' | 'tickets' | 'admittedTotal' | 'contention'>;
type RingReadings = Pick<SharedState['ring'], 'capacity' | 'usedBytes' | 'written' | 'dropped' | 'contention'>;

export interface ProxyView {
  readonly options: Pick<ProxyOptions, 'admin' | 'authFile' | 'cache' | 'cacheMaxBytes' | 'parents' | 'redis'>;
  readonly shared: {
    readonly semaphore: SemaphoreReadings;
    readonly ring: RingReadings;
    readonly stats: Pick<SharedState['stats'], 'get' | 'snapshot'>;
    readonly workers: Pick<SharedState['workers'], 'rows'>;
    /** The cache's coalescing: URLs being fetched now, followers waiting for them. */
    readonly inFlight: Pick<SharedState['inFlight'], 'snapshot'>;
    readonly parents: Pick<SharedState['parents'], 'read'>;
  };
  /** How long connections waited for a permit (cumulative buckets). */
  readonly waits: { readonly bucketsSeconds: readonly number[]; readonly counts: readonly number[]; readonly count: number; readonly sumSeconds: number };
  /** The logger thread's latest aggregate. */
  summary(): LogSummary;
  /** The analytics over days for a range, counted and answered by the logger thread. */
  analytics(range: AnalyticsRange): Promise<AnalyticsReport>;
  /** The users of --auth-file now in force (the admin login uses them too). */
  users(): Users | undefined;
  /** True once serving threads are up and until shutdown begins. */
  readonly ready: boolean;
  /** Bans in force and the hottest clients (read from shared memory), and lifting one ban (logged). */
  readonly limits: Pick<ClientLimits, 'bans' | 'lift' | 'hottest'>;
}
