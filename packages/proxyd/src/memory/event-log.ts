// The event log every thread writes: one JSON object per record into the shared LogRing, which the
// logger thread drains. Writing never blocks on I/O: a full ring drops the record and counts it.
import { threadId } from 'node:worker_threads';
import type { LogRing } from '@proxyd/sync/log-ring';

export type EventLevel = 'error' | 'warn' | 'info' | 'debug';

/** One log event: a name, a level and flat fields. */
export interface LogEvent {
  event: string;
  level?: EventLevel;
  [field: string]: string | number | boolean | undefined | null;
}

export const LEVEL_RANK: Record<EventLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class EventLog {
  readonly #ring: LogRing;
  readonly #level: () => number;

  /** `level()` reads the shared level (Stats "logLevel"), so a SIGHUP change reaches every thread. */
  constructor(ring: LogRing, level: () => number) {
    this.#ring = ring;
    this.#level = level;
  }

  /**
   * Record an event from this thread. Events below the configured level are dropped here, before any
   * encoding (they would be filtered by the logger anyway). Returns false when the ring was full (the
   * record was counted as dropped).
   */
  write(event: LogEvent): boolean {
    if (LEVEL_RANK[event.level ?? 'info'] > this.#level()) return true;
    const record = JSON.stringify({ time: Date.now(), level: 'info', thread: threadId, ...event });
    try {
      return this.#ring.writeString(record);
    } catch {
      // Larger than the whole ring: keep the event's name rather than lose it entirely.
      return this.#ring.writeString(JSON.stringify({ time: Date.now(), level: 'warn', thread: threadId, event: 'log-record-too-large', of: event.event }));
    }
  }
}
