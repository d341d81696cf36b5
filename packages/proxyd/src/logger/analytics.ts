/**
 * Analytics over days, counted by the logger thread from the records it already drains (the serving
 * threads pay nothing more): per hour, requests and bytes in total and by decision, status class,
 * method, cache result, destination host, client, and blocked host + rule. The hours being counted are
 * in memory (bounded: TopCounter); every few seconds, before a query and at shutdown, each changed
 * hour replaces its rows in the store (analytics-store.ts), keeping its top N keys + "(other)". An hour
 * met again — after a restart, or a late record after the hour turned — is first read back from the
 * store, so counting goes on from what was saved.
 */
import type { AnalyticsRange, AnalyticsReport } from '../messages/logger-messages.ts';
import { AnalyticsStore, HOUR_MS } from './analytics-store.ts';
import { analyticsReport } from './analytics-report.ts';
import { statusClass, type RequestFacts } from './request-facts.ts';
import { TopCounter, type Tally } from './top-counter.ts';

/**
 * Keys stored per hour for each dimension (plus "(other)"); kept in memory: CAPACITY_FACTOR times as
 * many, so that what is stored is the top of a larger table (see top-counter.ts for the guarantee).
 */
export const STORED_KEYS = { total: 1, decision: 8, status: 8, method: 20, cache: 20, host: 100, client: 100, blocked: 50 } as const;
export type Dimension = keyof typeof STORED_KEYS;
const DIMENSIONS = Object.keys(STORED_KEYS) as Dimension[];
const CAPACITY_FACTOR = 20;

/** One hour being counted: a bounded counter per dimension. */
class HourCounts {
  readonly counters = Object.fromEntries(DIMENSIONS.map((d) => [d, new TopCounter(STORED_KEYS[d] * CAPACITY_FACTOR)])) as Record<Dimension, TopCounter>;
  dirty = false;

  add(dimension: Dimension, key: string, f: RequestFacts): void {
    this.counters[dimension].add(key, 1, f.bytesUp, f.bytesDown);
  }

  *rows(): Generator<[Dimension, string, Tally]> {
    for (const d of DIMENSIONS) for (const [key, tally] of this.counters[d].top(STORED_KEYS[d])) yield [d, key, tally];
  }
}

export class Analytics {
  readonly store: AnalyticsStore;
  readonly #retentionMs: number;
  readonly #hours = new Map<number, HourCounts>();
  #prunedAt = -1;

  constructor(file: string, retentionHours: number, now = Date.now()) {
    this.store = new AnalyticsStore(file);
    this.#retentionMs = retentionHours * HOUR_MS;
    this.#pruneIfDue(now);
  }

  /** Count one request (or refused connection). */
  add(f: RequestFacts): void {
    const counts = this.#counts(Math.floor(f.time / HOUR_MS) * HOUR_MS);
    counts.dirty = true;
    counts.add('total', '', f);
    counts.add('decision', f.decision, f);
    counts.add('status', statusClass(f.status), f);
    if (f.method !== undefined) counts.add('method', f.method, f);
    if (f.cache !== undefined) counts.add('cache', f.cache, f);
    if (f.host !== undefined) counts.add('host', f.host, f);
    counts.add('client', f.client, f);
    if ((f.decision === 'blocked' || f.decision === 'refused') && f.host !== undefined && f.rule !== undefined) counts.add('blocked', `${f.host}\t${f.rule}`, f);
  }

  /** Save every changed hour; forget hours before the current one; prune once an hour. */
  flush(now = Date.now()): void {
    const current = Math.floor(now / HOUR_MS) * HOUR_MS;
    for (const [hour, counts] of this.#hours) {
      if (counts.dirty) this.store.saveHour(hour, counts.rows());
      counts.dirty = false;
      if (hour < current) this.#hours.delete(hour);
    }
    this.#pruneIfDue(now);
  }

  /** Save, then the report for a range (what /api/analytics answers). */
  report(range: AnalyticsRange, now = Date.now()): AnalyticsReport {
    this.flush(now);
    return analyticsReport(this.store, range, { now, keysInMemory: this.keysInMemory() });
  }

  /** Keys held in memory, over every hour and dimension (what the bound is about). */
  keysInMemory(): number {
    let n = 0;
    for (const counts of this.#hours.values()) for (const d of DIMENSIONS) n += counts.counters[d].size;
    return n;
  }

  close(): void {
    this.flush();
    this.store.close();
  }

  #counts(hour: number): HourCounts {
    let counts = this.#hours.get(hour);
    if (counts === undefined) {
      counts = new HourCounts();
      for (const row of this.store.hour(hour)) {
        if (row.dimension in STORED_KEYS) counts.counters[row.dimension as Dimension].add(row.key, row.requests, row.bytesUp, row.bytesDown);
      }
      this.#hours.set(hour, counts);
    }
    return counts;
  }

  /** Delete the hours that ended longer than the retention ago: at start, then once an hour. */
  #pruneIfDue(now: number): void {
    const current = Math.floor(now / HOUR_MS) * HOUR_MS;
    if (current === this.#prunedAt) return;
    this.#prunedAt = current;
    this.store.prune(now - this.#retentionMs - HOUR_MS + 1);
  }
}
