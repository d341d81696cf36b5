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
    const record = encode(event);
    try {
      return this.#ring.writeString(record);
    } catch {
      // Larger than the whole ring: keep the event's name rather than lose it entirely.
      return this.#ring.writeString(JSON.stringify({ time: Date.now(), level: 'warn', thread: threadId, event: 'log-record-too-large', of: event.event }));
    }
  }
}

/** What every record starts with after its time: its level (info unless the event says) and thread. */
const INFO_THREAD = `,"level":"info","thread":${threadId},`;

/**
 * The record's JSON text: `{ time, level: 'info', thread, ...event }` stringified. An event without a
 * level, time or thread of its own (every request record) gets the same text from a fixed prefix and
 * the event's own JSON: no merged copy of the event is made (measured: half of the producer's cost of
 * a request record). Field names are never integer-like ("0"), which an object would put first.
 */
function encode(event: LogEvent): string {
  if ('level' in event || 'time' in event || 'thread' in event) return JSON.stringify({ time: Date.now(), level: 'info', thread: threadId, ...event });
  return `{"time":${Date.now()}${INFO_THREAD}${JSON.stringify(event).slice(1)}`;
}
