/**
 * The analytics' file: hourly counts in an embedded SQLite database (node:sqlite, built into the
 * runtime). Only the logger thread opens it, so there is one writer and no lock between threads; WAL
 * lets a reader (sqlite3 on the command line, a backup) look while it writes.
 *
 * One table, long rather than wide: a row is (hour, dimension, key) → requests, bytes up, bytes down.
 *   dimension "total"    key ""                      everything in the hour
 *             "decision" allowed|blocked|refused|limited|failed
 *             "status"   1xx … 5xx, none
 *             "method"   GET, CONNECT, …
 *             "cache"    the cache's tag (HIT, MISS, …): rows appear once request records carry one
 *             "host"     destination host            (top N + "(other)")
 *             "client"   client address              (top N + "(other)")
 *             "blocked"  host TAB rule that blocked it (top N + "(other)")
 * A new dimension is new rows, not a new column: the schema does not change for it. Every bounded
 * dimension stores at most its top N keys plus "(other)" per hour, so the file grows by at most a few
 * hundred rows an hour whatever the traffic, and --analytics-retention deletes whole hours.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Tally } from './top-counter.ts';

export const HOUR_MS = 3_600_000;

/** A stored row: hour (ms since the epoch, the hour's start), dimension, key and its tally. */
export interface CountRow extends Tally {
  hour: number;
  dimension: string;
  key: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS counts (
  hour INTEGER NOT NULL,
  dimension TEXT NOT NULL,
  key TEXT NOT NULL,
  requests INTEGER NOT NULL,
  bytes_up INTEGER NOT NULL,
  bytes_down INTEGER NOT NULL,
  PRIMARY KEY (hour, dimension, key)
) WITHOUT ROWID;
`;

export class AnalyticsStore {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #deleteHour: StatementSync;
  readonly #selectHour: StatementSync;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true });
    this.#db = new DatabaseSync(file);
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    this.#db.exec(SCHEMA);
    this.#insert = this.#db.prepare('INSERT INTO counts (hour, dimension, key, requests, bytes_up, bytes_down) VALUES (?, ?, ?, ?, ?, ?)');
    this.#deleteHour = this.#db.prepare('DELETE FROM counts WHERE hour = ?');
    this.#selectHour = this.#db.prepare('SELECT hour, dimension, key, requests, bytes_up AS bytesUp, bytes_down AS bytesDown FROM counts WHERE hour = ?');
  }

  /** Replace an hour's rows with these (one transaction: a reader sees the old hour or the new one). */
  saveHour(hour: number, rows: Iterable<[dimension: string, key: string, tally: Tally]>): void {
    this.#db.exec('BEGIN');
    try {
      this.#deleteHour.run(hour);
      for (const [dimension, key, t] of rows) this.#insert.run(hour, dimension, key, t.requests, t.bytesUp, t.bytesDown);
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Rows of one hour (to continue counting it after a restart). */
  hour(hour: number): CountRow[] {
    return this.#selectHour.all(hour) as unknown as CountRow[];
  }

  /** Rows with hour >= `from`, of these dimensions. */
  rows(from: number, dimensions: readonly string[]): CountRow[] {
    const marks = dimensions.map(() => '?').join(', ');
    const sql = `SELECT hour, dimension, key, requests, bytes_up AS bytesUp, bytes_down AS bytesDown FROM counts WHERE hour >= ? AND dimension IN (${marks})`;
    return this.#db.prepare(sql).all(from, ...dimensions) as unknown as CountRow[];
  }

  /** Sum by key of one dimension since `from`, most requests first. */
  sums(from: number, dimension: string): (Tally & { key: string })[] {
    const sql = `SELECT key, SUM(requests) AS requests, SUM(bytes_up) AS bytesUp, SUM(bytes_down) AS bytesDown FROM counts
      WHERE hour >= ? AND dimension = ? GROUP BY key ORDER BY requests DESC, key`;
    return this.#db.prepare(sql).all(from, dimension) as unknown as (Tally & { key: string })[];
  }

  /** Delete every hour that started before `before`; how many rows went. */
  prune(before: number): number {
    return Number(this.#db.prepare('DELETE FROM counts WHERE hour < ?').run(before).changes);
  }

  /** Hours stored, and rows. */
  size(): { hours: number; rows: number } {
    const r = this.#db.prepare('SELECT COUNT(DISTINCT hour) AS hours, COUNT(*) AS rows FROM counts').get() as { hours: number; rows: number };
    return { hours: r.hours, rows: r.rows };
  }

  close(): void {
    this.#db.close();
  }
}
