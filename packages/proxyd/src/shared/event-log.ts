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

export class EventLog {
  readonly #ring: LogRing;

  constructor(ring: LogRing) {
    this.#ring = ring;
  }

  /** Record an event from this thread. Returns false when the ring was full (the record was counted as dropped). */
  write(event: LogEvent): boolean {
    const record = JSON.stringify({ time: Date.now(), level: 'info', thread: threadId, ...event });
    try {
      return this.#ring.writeString(record);
    } catch {
      // Larger than the whole ring: keep the event's name rather than lose it entirely.
      return this.#ring.writeString(JSON.stringify({ time: Date.now(), level: 'warn', thread: threadId, event: 'log-record-too-large', of: event.event }));
    }
  }
}
