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
    return this.#put(encode(event), event.event);
  }

  /**
   * Record a forwarded request (event "request", level info): the same file line as
   * write({ event: 'request', ...r }), but handed to the logger in the positional form below, which it
   * reads without a JSON parse. Values the form cannot carry as they are fall back to write().
   */
  writeRequest(r: RequestRecord): boolean {
    if (LEVEL_RANK.info > this.#level()) return true;
    const { conn, client, method, url, parent, status, cut, up, down, ms, cache } = r;
    if (
      method === undefined || url === undefined || NOT_PLAIN.test(client) || NOT_PLAIN.test(method) || NOT_PLAIN.test(url) ||
      (parent !== undefined && (parent === '' || NOT_PLAIN.test(parent))) || (cache !== undefined && (cache === '' || NOT_PLAIN.test(cache))) ||
      !(Number.isFinite(conn) && Number.isFinite(status) && Number.isFinite(up) && Number.isFinite(down) && Number.isFinite(ms))
    ) {
      return this.write({ event: 'request', conn, client, method, url, parent, status, cut, up, down, ms, cache });
    }
    return this.#put(`${REQUEST_MARK}${Date.now()}${US}${threadId}${US}${conn}${US}${client}${US}${method}${US}${url}${US}${parent ?? ''}${US}${status}${US}${cut ? '1' : ''}${US}${up}${US}${down}${US}${ms}${US}${cache ?? ''}`, 'request');
  }

  #put(record: string, name: string): boolean {
    try {
      return this.#ring.writeString(record);
    } catch {
      // Larger than the whole ring: keep the event's name rather than lose it entirely.
      return this.#ring.writeString(JSON.stringify({ time: Date.now(), level: 'warn', thread: threadId, event: 'log-record-too-large', of: name }));
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

/** A forwarded request's log fields, in the order of its JSON line. */
export interface RequestRecord {
  conn: number;
  client: string;
  method: string | undefined;
  url: string | undefined;
  parent?: string | undefined;
  status: number;
  cut?: true | undefined;
  up: number;
  down: number;
  ms: number;
  cache?: string | undefined;
}

// The positional form of a request record (issue 20: JSON.parse of every record was 18.5% of the
// logger thread's busy time, plus the garbage it left): RS, then time, thread, conn, client, method, url,
// parent, status, cut ("1" or empty), up, down, ms, cache, separated by US. Only strings that JSON
// writes as they are (no quote, backslash, control character or surrogate) travel this way, so that
// each is its own JSON text between quotes and the separators cannot occur inside one; numbers are
// finite, where `${n}` is their JSON text. A JSON record never starts with RS.
const REQUEST_MARK = '\x1e';
const US = '\x1f';
const NOT_PLAIN = /["\\\x00-\x1f\ud800-\udfff]/;

/** A request record in positional form as the logger needs it: the parsed record, and its JSON text. */
export function decodeRequest(text: string): { record: Record<string, unknown>; json: string } | undefined {
  if (text.charCodeAt(0) !== 0x1e) return undefined;
  const f = text.slice(1).split(US);
  if (f.length !== 13) return undefined;
  const [time, thread, conn, client, method, url, parent, status, cut, up, down, ms, cache] = f as [string, string, string, string, string, string, string, string, string, string, string, string, string];
  const json =
    `{"time":${time},"level":"info","thread":${thread},"event":"request","conn":${conn},"client":"${client}","method":"${method}","url":"${url}"` +
    `${parent === '' ? '' : `,"parent":"${parent}"`},"status":${status}${cut === '' ? '' : ',"cut":true'},"up":${up},"down":${down},"ms":${ms}${cache === '' ? '' : `,"cache":"${cache}"`}}`;
  const record: Record<string, unknown> = {
    time: Number(time), level: 'info', thread: Number(thread), event: 'request', conn: Number(conn), client, method, url,
    parent: parent === '' ? undefined : parent, status: Number(status), cut: cut === '' ? undefined : true,
    up: Number(up), down: Number(down), ms: Number(ms), cache: cache === '' ? undefined : cache,
  };
  return { record, json };
}
