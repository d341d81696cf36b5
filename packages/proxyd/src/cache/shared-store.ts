/**
 * The one cache store of the whole host: a store for undici's cache interceptor (its documented
 * contract: get, createWriteStream, delete) over one SQLite file that every serving thread opens with
 * its own connection. The file is in a tmpfs directory (/dev/shm) in memory mode, in --cache-dir in disk
 * mode; the code is the same.
 *
 * Why SQLite and not a store of our own in a SharedArrayBuffer. Measured on this project's 2-core host
 * (scripts/bench/cache-store.ts, README "Caching"): a hit's lookup here costs ~10–25 µs (one indexed
 * SELECT; the body of an object up to 256 KiB is in the same row), against ~60 µs for a whole proxied
 * request; a hand-written shared-memory store would save part of those microseconds and cost an
 * allocator, a hash table, eviction and crash safety written from scratch. SQLite brings all four,
 * and the same file is the disk mode.
 *
 * Why undici's own SqliteCacheStore is not used: with several connections on one file it fails with
 * "database is locked" (it sets no busy timeout: undici #4124), and it buffers a whole body in memory
 * before it writes it. Here:
 *   - every connection has a busy timeout (SQLite then retries a locked write for up to that long) and
 *     every write transaction is BEGIN IMMEDIATE, which takes the write lock first (a read transaction
 *     that upgrades to a write can fail at once, busy timeout or not). Write transactions are short and
 *     bounded — one chunk, or one entry's metadata — so this wait is the futex bargain again: a thread
 *     may block for the microseconds another holds the lock, never for a client or the network;
 *   - bodies are written as they arrive, in chunks of 256 KiB (one row each): a 50 MB .deb never sits
 *     in memory whole, and an entry becomes visible (complete = 1) only when its last chunk is in;
 *   - the size cap is kept in shared memory (Stats 'cacheBytes', Atomics.add on each commit), and the
 *     writer that passes it evicts least recently used entries in the same transaction.
 *
 * Failures never reach a client as a wrong answer. Any SQLite error (a corrupt or truncated file, a
 * read-only directory, a full disk) is logged once per thread and counted (Stats 'cacheErrors'), and the
 * operation is skipped: a lookup reports a miss, a write is dropped. A body whose chunk is missing or
 * whose length disagrees with its entry fails its stream, so a client sees a cut connection, never a
 * wrong body.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { Readable, Writable } from 'node:stream';
import type * as CacheTypes from 'undici/types/cache-interceptor.d.ts';
import type { UrlPresence } from './url-presence.ts';

type CacheKey = CacheTypes.default.CacheKey;
type CacheValue = CacheTypes.default.CacheValue;
type GetResult = CacheTypes.default.GetResult;

/** Body bytes per row. A body up to this size is stored in its entry's own row (one SELECT per hit). */
export const CHUNK_BYTES = 256 * 1024;
/** How long a connection retries a locked database before the operation fails (and is bypassed). */
const BUSY_TIMEOUT_MS = 2_000;
/** A hit refreshes its entry's lastUsed (for LRU eviction) at most this often: one write per minute, not per hit. */
const TOUCH_EVERY_MS = 60_000;
/**
 * Each thread keeps the parsed form of small entries it has served (headers, directives, body), keyed by
 * entry id, up to this many body bytes: a hit then reads only the narrow index row (id, vary, expiry)
 * from the shared file — measured at 7 µs against 20–30 µs for the whole row with its body — and takes
 * the rest from the memo. Sound because an entry never changes once complete (a new answer is a new row
 * with a new id; ids are never reused, AUTOINCREMENT) and because every hit still learns which entry is
 * current from the shared file, or from rows validated by the URL's generation (below): a purge, a
 * replacement or an eviction by any thread is seen at the next hit.
 */
const MEMO_BYTES = 16 * 1024 * 1024;
const MEMO_ENTRY_BYTES = CHUNK_BYTES;
/**
 * Each thread also remembers which entries a URL had (the narrow index rows a lookup reads), with the
 * URL's generation read before it asked (url-presence.ts): while the generation is unchanged, no thread
 * has committed a change to that URL, and a hit needs no SQLite at all (no read transaction, no file
 * locks: 2 fcntl calls per lookup in WAL mode). Bounded by count and by URL length.
 */
const CURRENT_URLS = 4096;
const CURRENT_URL_CHARS = 1024;

/** Heuristic freshness (from Last-Modified, RFC 9111 §4.2.2) is capped at this, as Squid's refresh_pattern caps it. */
export const HEURISTIC_CAP_MS = 24 * 60 * 60 * 1000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a thread's memo (below) is keyed by id
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    vary TEXT,
    statusCode INTEGER NOT NULL,
    statusMessage TEXT NOT NULL,
    headers TEXT NOT NULL,
    etag TEXT,
    cacheControl TEXT,
    cachedAt INTEGER NOT NULL,
    staleAt INTEGER NOT NULL,
    deleteAt INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    lastUsed INTEGER NOT NULL,
    body BLOB -- last: reading the columns before it never walks the body's overflow pages
  );
  -- Covering the lookup (SELECT id, vary, deleteAt, lastUsed … ORDER BY cachedAt): answered from the index
  -- alone, no table row and no sort (5.6 µs against 9.3 µs with an index on (url, method) only).
  CREATE INDEX IF NOT EXISTS entries_lookup ON entries (url, method, complete, cachedAt, id, vary, deleteAt, lastUsed);
  CREATE INDEX IF NOT EXISTS entries_lru ON entries (lastUsed);
  CREATE TABLE IF NOT EXISTS chunks (entry INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (entry, seq)) WITHOUT ROWID;
`;

/** What the store counts in shared memory (a Stats with these names). */
export interface StoreCounters {
  add(name: 'cacheEntries' | 'cacheBytes' | 'cacheEvictions' | 'cacheErrors', n?: number): void;
  get(name: 'cacheBytes'): number;
}

export interface StoreOptions {
  file: string;
  maxBytes: number;
  maxObjectBytes: number;
  counters: StoreCounters;
  /** Which URLs may be stored (shared memory): a lookup of a URL that cannot be there skips the SELECT. */
  presence: UrlPresence;
  /** Called once per thread with the first error (later ones are only counted). */
  onError(err: Error, doing: string): void;
}

function openDatabase(file: string): DatabaseSync {
  const db = new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS });
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  return db;
}

/**
 * Primary, at start-up: create or check the file, drop what a crash left half-written, and say what it
 * holds. Throws when the file cannot be used (the caller logs it and runs without a cache).
 */
export function prepareStoreFile(file: string, presence: UrlPresence): { entries: number; bytes: number } {
  const db = openDatabase(file);
  try {
    db.exec(SCHEMA);
    const check = db.prepare('PRAGMA quick_check').get() as { quick_check: string };
    if (check.quick_check !== 'ok') throw new Error(`the cache file fails its integrity check: ${check.quick_check}`);
    db.exec('BEGIN IMMEDIATE; DELETE FROM chunks WHERE entry IN (SELECT id FROM entries WHERE complete = 0); DELETE FROM entries WHERE complete = 0; COMMIT;');
    let entries = 0;
    let bytes = 0;
    for (const row of db.prepare('SELECT url, size FROM entries').iterate() as Iterable<{ url: string; size: number }>) {
      presence.add(row.url, 1);
      entries++;
      bytes += row.size;
    }
    return { entries, bytes };
  } finally {
    db.close();
  }
}

/** An entry as a lookup first sees it: enough to choose, not to answer. */
interface IndexRow {
  id: number;
  vary: string | null;
  deleteAt: number;
  lastUsed: number;
  /** `vary` parsed, once (this thread's copy of the row). */
  wanted?: Record<string, string | string[] | null>;
}

/** A small entry as this thread remembers it (see MEMO_BYTES): never changes once remembered. */
export interface RememberedEntry {
  readonly url: string;
  readonly result: GetResult;
  readonly bytes: number;
  /** The caller's own form of this answer (the worker's prepared head), kept as long as the entry is. */
  prepared?: unknown;
}

/** An entry as deletion sees it. */
interface StoredRow {
  id: number;
  url: string;
  size: number;
  complete: number;
}

interface EntryRow {
  id: number;
  vary: string | null;
  statusCode: number;
  statusMessage: string;
  headers: string;
  etag: string | null;
  cacheControl: string | null;
  cachedAt: number;
  staleAt: number;
  deleteAt: number;
  size: number;
  chunks: number;
  body: Uint8Array | null;
  lastUsed: number;
}

/** One thread's connection to the shared cache file. */
export class SharedStore implements CacheTypes.default.CacheStore {
  readonly #o: StoreOptions;
  #db: DatabaseSync | undefined;
  #q: ReturnType<typeof prepare> | undefined;
  #reported = false;
  /** A lookup the caller already made for this exact key, handed to the next get() (see handOver). */
  #handed: { key: CacheKey; result: GetResult | undefined } | undefined;
  /** Writes under way in this thread, by URL (a coalescing leader waits for its own before it wakes followers). */
  readonly #writes = new Map<string, Promise<void>>();
  /** Parsed small entries by id, least recently used first (see MEMO_BYTES). */
  readonly #memo = new Map<number, RememberedEntry>();
  #memoBytes = 0;
  /** A URL's index rows with the generation they were read at (see CURRENT_URLS), by method and URL. */
  readonly #current = new Map<string, { generation: number; rows: IndexRow[] }>();
  /** Inside a write transaction: presence to subtract and generations to bump once it has committed. */
  #removed: string[] = [];
  #changed: string[] = [];

  constructor(o: StoreOptions) {
    this.#o = o;
    try {
      this.#db = openDatabase(o.file);
      this.#q = prepare(this.#db);
    } catch (err) {
      this.#failed(err, 'opening the cache file');
    }
  }

  /**
   * Pass a result just looked up for `key` to the next get() of the same key object: cache-front.ts looks
   * first (to decide whether to coalesce) and undici's interceptor looks again in the same synchronous
   * call; one SELECT serves both.
   */
  handOver(key: CacheKey, result: GetResult | undefined): void {
    this.#handed = { key, result };
  }

  get(key: CacheKey): GetResult | undefined {
    const handed = this.#handed;
    if (handed !== undefined) {
      this.#handed = undefined;
      if (handed.key.origin === key.origin && handed.key.path === key.path && handed.key.method === key.method) return handed.result;
    }
    return this.lookup(key);
  }

  /** The freshest complete entry for `key` whose Vary'd request headers match (HEAD finds the GET). */
  lookup(key: CacheKey): GetResult | undefined {
    const q = this.#q;
    const url = urlOf(key);
    if (!q || !this.#o.presence.mayHave(url)) return undefined;
    try {
      const id = this.#choose(q, url, key);
      if (id === undefined) return undefined;
      return this.#remembered(id, url) ?? this.#result(q.byId.get(id) as unknown as EntryRow, url);
    } catch (err) {
      this.#failed(err, 'reading the cache');
      return undefined;
    }
  }

  /**
   * The entry lookup() would answer `key` with, as this thread remembers it — for a hit answered without
   * undici's interceptor (worker/answer-hit.ts). Undefined when nothing is stored, and when the entry is
   * too large to be remembered (lookup() streams it). Not a copy: the caller must not change it.
   * `key.headers` is read only when an entry has a Vary (the caller may make it a getter).
   */
  current(key: CacheKey): RememberedEntry | undefined {
    const q = this.#q;
    const url = urlOf(key);
    if (!q || !this.#o.presence.mayHave(url)) return undefined;
    try {
      const id = this.#choose(q, url, key);
      if (id === undefined) return undefined;
      let m = this.#memo.get(id);
      if (m === undefined) {
        this.#result(q.byId.get(id) as unknown as EntryRow, url); // remembers it when it is small
        m = this.#memo.get(id);
      } else {
        this.#memo.delete(id); // re-inserted: the Map's order is the LRU order
        this.#memo.set(id, m);
      }
      return m?.url === url ? m : undefined;
    } catch (err) {
      this.#failed(err, 'reading the cache');
      return undefined;
    }
  }

  createWriteStream(key: CacheKey, value: CacheValue): Writable | undefined {
    // HEAD answers have no body to store; a HEAD is answered from the stored GET (lookup()).
    if (!this.#q || key.method !== 'GET') return undefined;
    const writer = new EntryWriter(this, key, capHeuristicFreshness(value), this.#o.maxObjectBytes);
    const url = urlOf(key);
    const closed = new Promise<void>((resolve) => writer.once('close', resolve));
    this.#writes.set(url, closed);
    void closed.then(() => {
      if (this.#writes.get(url) === closed) this.#writes.delete(url);
    });
    return writer;
  }

  /** A write of `url` this thread has under way: settles when it has committed or failed. */
  writing(url: string): Promise<void> | undefined {
    return this.#writes.get(url);
  }

  /**
   * undici asks for this after every answer that may not be stored (no-store, private, Set-Cookie) and
   * four times after an unsafe method: a URL nothing is stored under (not even a write under way) is
   * known from shared memory, without a write transaction.
   */
  delete(key: CacheKey): void {
    const url = urlOf(key);
    if (this.#o.presence.mayHave(url)) this.purge(url);
  }

  /** Remove every entry of a URL (any method, any Vary); how many there were. */
  purge(url: string): number {
    const q = this.#q;
    if (!q) return 0;
    try {
      return this.#write(() => this.#deleteRows(q.deleteUrl.all(url) as unknown as StoredRow[]));
    } catch (err) {
      this.#failed(err, 'deleting from the cache');
      return 0;
    }
  }

  // ---- for EntryWriter ----

  /** Insert the entry's row, not yet visible (complete = 0); its id. */
  begin(key: CacheKey, value: CacheValue): number {
    const q = this.#q!;
    const now = Date.now();
    const url = urlOf(key);
    // Counted from the moment the row exists (complete or not), so that a delete() of the URL sees it.
    this.#o.presence.add(url, 1);
    let r;
    try {
      r = this.#insert(q, url, key, value, now);
    } catch (err) {
      this.#o.presence.add(url, -1);
      throw err;
    }
    return Number(r.lastInsertRowid);
  }

  #insert(q: ReturnType<typeof prepare>, url: string, key: CacheKey, value: CacheValue, now: number) {
    return q.insert.run(
      url,
      key.method,
      value.vary ? JSON.stringify(value.vary) : null,
      value.statusCode,
      value.statusMessage,
      JSON.stringify(value.headers),
      value.etag ?? null,
      value.cacheControlDirectives ? JSON.stringify(value.cacheControlDirectives) : null,
      value.cachedAt,
      value.staleAt,
      value.deleteAt,
      now,
    );
  }

  writeChunk(id: number, seq: number, data: Buffer): void {
    this.#q!.chunk.run(id, seq, data);
  }

  /**
   * Make the entry visible: its size, its inline body (when it had one chunk or less), replace the older
   * entries of the same URL and Vary, and evict past the cap — one transaction.
   */
  commit(id: number, key: CacheKey, vary: string | null, o: { size: number; chunks: number; inline: Buffer | null }): void {
    const q = this.#q!;
    this.#write(() => {
      const old = q.sameVariant.all(urlOf(key), key.method, vary, id) as unknown as StoredRow[];
      this.#deleteRows(old);
      if (q.complete.run(o.size, o.chunks, o.inline, id).changes === 0) return; // purged while it was written
      this.#changed.push(urlOf(key));
      this.#o.counters.add('cacheEntries', 1);
      this.#o.counters.add('cacheBytes', o.size);
      this.#evictPastCap();
    });
  }

  /** Drop a write that will not complete (too large, errored, aborted). */
  abandon(id: number, key: CacheKey): void {
    try {
      const q = this.#q!;
      this.#write(() => {
        q.dropChunks.run(id);
        if (q.dropEntry.run(id).changes > 0) this.#removed.push(urlOf(key));
      });
    } catch (err) {
      this.#failed(err, 'dropping an unfinished cache write');
    }
  }

  failed(err: unknown, doing: string): void {
    this.#failed(err, doing);
  }

  // ---- inside ----

  /** A small entry this thread has parsed before, as a fresh result (its own body array), or undefined. */
  #remembered(id: number, url: string): GetResult | undefined {
    const m = this.#memo.get(id);
    if (m === undefined || m.url !== url) return undefined;
    this.#memo.delete(id); // re-inserted: the Map's order is the LRU order
    this.#memo.set(id, m);
    return { ...m.result, body: m.result.body === undefined ? undefined : [...(m.result.body as Buffer[])] } as GetResult;
  }

  #remember(id: number, url: string, result: GetResult, bytes: number): void {
    if (bytes > MEMO_ENTRY_BYTES) return;
    this.#memo.set(id, { url, result, bytes });
    this.#memoBytes += bytes;
    for (const [oldId, old] of this.#memo) {
      if (this.#memoBytes <= MEMO_BYTES) break;
      this.#memo.delete(oldId);
      this.#memoBytes -= old.bytes;
    }
  }

  #result(row: EntryRow | undefined, url: string): GetResult | undefined {
    if (row === undefined) return undefined; // deleted between the two reads
    const headers = JSON.parse(row.headers) as Record<string, string | string[]>;
    let body: GetResult['body'];
    if (row.chunks === 0) {
      const bytes = row.body ? Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength) : Buffer.alloc(0);
      if (bytes.length !== row.size) throw new Error(`cache entry ${row.id}: ${bytes.length} body bytes where ${row.size} were stored`);
      body = row.size === 0 ? [] : [bytes];
    } else {
      body = Readable.from(this.#chunks(row.id, row.chunks, row.size), { objectMode: false, highWaterMark: CHUNK_BYTES });
    }
    const result = {
      statusCode: row.statusCode,
      statusMessage: row.statusMessage,
      headers,
      etag: row.etag ?? undefined,
      vary: row.vary ? (JSON.parse(row.vary) as Record<string, string | string[]>) : undefined,
      cacheControlDirectives: row.cacheControl ? (JSON.parse(row.cacheControl) as CacheTypes.default.CacheControlDirectives) : undefined,
      cachedAt: row.cachedAt,
      staleAt: row.staleAt,
      deleteAt: row.deleteAt,
      body,
    } as GetResult;
    if (row.chunks === 0) this.#remember(row.id, url, result, row.size + row.headers.length);
    return row.chunks === 0 ? { ...result, body: [...(body as Buffer[])] } : result;
  }

  /** A chunked body, one row per step as the reader asks (never the whole object at once). */
  *#chunks(id: number, count: number, size: number): Generator<Buffer> {
    let seen = 0;
    for (let seq = 0; seq < count; seq++) {
      const row = this.#q!.readChunk.get(id, seq) as { data: Uint8Array } | undefined;
      // Evicted or purged while it was being read, or damaged: fail the body rather than end it short.
      if (!row) throw new Error(`cache entry ${id}: chunk ${seq} of ${count} is gone`);
      seen += row.data.byteLength;
      yield Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength);
    }
    if (seen !== size) throw new Error(`cache entry ${id}: ${seen} body bytes where ${size} were stored`);
  }

  /**
   * One write transaction, taking the write lock first (BEGIN IMMEDIATE: see the top of the file). What
   * it removed and changed reaches shared memory (url-presence.ts) only once it has committed: a
   * rolled-back delete must not leave a URL's counter too low (a delete() would then skip a stored
   * entry), and a generation bumped before the commit could be read, and remembered, with the old state.
   */
  #write<T>(fn: () => T): T {
    const db = this.#db!;
    this.#removed = [];
    this.#changed = [];
    db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = fn();
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
    const { presence } = this.#o;
    for (const url of this.#removed) presence.add(url, -1);
    for (const url of this.#changed) presence.changed(url);
    return result;
  }

  /** The id of `url`'s current entry for `key` (method, Vary), from this thread's rows while they are current. */
  #choose(q: ReturnType<typeof prepare>, url: string, key: CacheKey): number | undefined {
    const method = key.method === 'HEAD' ? 'GET' : key.method;
    const rows = this.#rowsOf(q, url, method);
    const now = Date.now();
    for (const row of rows) {
      if (row.deleteAt <= now || !varyMatches(row, key)) continue;
      if (now - row.lastUsed > TOUCH_EVERY_MS) {
        q.touch.run(now, row.id); // for LRU eviction; no change to which entry is current
        row.lastUsed = now;
      }
      return row.id;
    }
    return undefined;
  }

  #rowsOf(q: ReturnType<typeof prepare>, url: string, method: string): IndexRow[] {
    const memoKey = method === 'GET' ? url : `${method} ${url}`;
    const generation = this.#o.presence.generation(url); // before the query: see url-presence.ts
    const known = this.#current.get(memoKey);
    if (known !== undefined && known.generation === generation) return known.rows;
    const rows = q.find.all(url, method) as unknown as IndexRow[];
    if (url.length <= CURRENT_URL_CHARS) {
      if (known !== undefined) this.#current.delete(memoKey);
      this.#current.set(memoKey, { generation, rows });
      if (this.#current.size > CURRENT_URLS) this.#current.delete(this.#current.keys().next().value!);
    }
    return rows;
  }

  #deleteRows(rows: StoredRow[]): number {
    const q = this.#q!;
    let entries = 0;
    let bytes = 0;
    for (const row of rows) {
      q.dropChunks.run(row.id);
      q.dropEntry.run(row.id);
      this.#removed.push(row.url);
      if (row.complete === 0) continue; // an unfinished write: never counted
      this.#changed.push(row.url);
      entries++;
      bytes += row.size;
    }
    if (entries > 0) {
      this.#o.counters.add('cacheEntries', -entries);
      this.#o.counters.add('cacheBytes', -bytes);
    }
    return entries;
  }

  /** Inside a write transaction: expired entries first, then least recently used, until 90% of the cap. */
  #evictPastCap(): void {
    const { counters, maxBytes } = this.#o;
    if (counters.get('cacheBytes') <= maxBytes) return;
    const q = this.#q!;
    let evicted = this.#deleteRows(q.expired.all(Date.now()) as unknown as StoredRow[]);
    for (let round = 0; counters.get('cacheBytes') > maxBytes * 0.9 && round < 1000; round++) {
      const victims = q.oldest.all() as unknown as StoredRow[];
      if (victims.length === 0) break;
      evicted += this.#deleteRows(victims);
    }
    if (evicted > 0) counters.add('cacheEvictions', evicted);
  }

  #failed(err: unknown, doing: string): void {
    this.#o.counters.add('cacheErrors', 1);
    if (this.#reported) return;
    this.#reported = true;
    this.#o.onError(err instanceof Error ? err : new Error(String(err)), doing);
  }
}

function prepare(db: DatabaseSync) {
  const s = (sql: string): StatementSync => db.prepare(sql);
  return {
    find: s('SELECT id, vary, deleteAt, lastUsed FROM entries WHERE url = ? AND method = ? AND complete = 1 ORDER BY cachedAt DESC LIMIT 16'),
    byId: s('SELECT * FROM entries WHERE id = ?'),
    touch: s('UPDATE entries SET lastUsed = ? WHERE id = ?'),
    insert: s(
      'INSERT INTO entries (url, method, vary, statusCode, statusMessage, headers, etag, cacheControl, cachedAt, staleAt, deleteAt, lastUsed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    chunk: s('INSERT INTO chunks (entry, seq, data) VALUES (?, ?, ?)'),
    readChunk: s('SELECT data FROM chunks WHERE entry = ? AND seq = ?'),
    complete: s('UPDATE entries SET size = ?, chunks = ?, body = ?, complete = 1 WHERE id = ?'),
    sameVariant: s('SELECT id, url, size, complete FROM entries WHERE url = ? AND method = ? AND vary IS ? AND id != ? AND complete = 1'),
    deleteUrl: s('SELECT id, url, size, complete FROM entries WHERE url = ?'),
    dropChunks: s('DELETE FROM chunks WHERE entry = ?'),
    dropEntry: s('DELETE FROM entries WHERE id = ?'),
    expired: s('SELECT id, url, size, complete FROM entries WHERE deleteAt <= ? AND complete = 1'),
    oldest: s('SELECT id, url, size, complete FROM entries WHERE complete = 1 ORDER BY lastUsed LIMIT 32'),
  };
}

/** Body bytes into the store as they pass: chunk rows as they fill, the entry made visible at the end. */
class EntryWriter extends Writable {
  readonly #store: SharedStore;
  readonly #key: CacheKey;
  readonly #value: CacheValue;
  readonly #max: number;
  #id = -1;
  #size = 0;
  #seq = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(store: SharedStore, key: CacheKey, value: CacheValue, max: number) {
    super({ highWaterMark: CHUNK_BYTES });
    this.#store = store;
    this.#key = key;
    this.#value = value;
    this.#max = max;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#size += chunk.length;
    if (this.#size > this.#max) return callback(new Error('larger than --cache-max-object'));
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    try {
      // A body that fits one chunk goes into the entry's own row at the end; a longer one is written as it goes.
      if (this.#pendingBytes >= CHUNK_BYTES) this.#flush(false);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    try {
      const vary = this.#value.vary ? JSON.stringify(this.#value.vary) : null;
      if (this.#id < 0) {
        const inline = Buffer.concat(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#id = this.#store.begin(this.#key, this.#value);
        this.#store.commit(this.#id, this.#key, vary, { size: this.#size, chunks: 0, inline });
      } else {
        this.#flush(true);
        this.#store.commit(this.#id, this.#key, vary, { size: this.#size, chunks: this.#seq, inline: null });
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (err && err.message !== 'larger than --cache-max-object') this.#store.failed(err, 'writing to the cache');
    // Not finished: whatever was written of it goes.
    if (!this.writableFinished && this.#id >= 0) this.#store.abandon(this.#id, this.#key);
    this.#pending = [];
    callback(err);
  }

  /** Write full chunks (and, at the end, the rest) as rows. */
  #flush(last: boolean): void {
    if (this.#id < 0) this.#id = this.#store.begin(this.#key, this.#value);
    let all = Buffer.concat(this.#pending, this.#pendingBytes);
    while (all.length >= CHUNK_BYTES || (last && all.length > 0)) {
      const piece = all.subarray(0, CHUNK_BYTES);
      this.#store.writeChunk(this.#id, this.#seq++, Buffer.from(piece)); // a copy: the row outlives `all`
      all = all.subarray(piece.length);
    }
    this.#pending = all.length > 0 ? [all] : [];
    this.#pendingBytes = all.length;
  }
}

function urlOf(key: CacheKey): string {
  return `${key.origin}${key.path}`;
}

function varyMatches(row: IndexRow, key: CacheKey): boolean {
  if (!row.vary) return true;
  const wanted = (row.wanted ??= JSON.parse(row.vary) as Record<string, string | string[] | null>);
  const headers = key.headers as Record<string, string | string[] | undefined> | undefined;
  for (const name in wanted) {
    const a = wanted[name] ?? undefined;
    const b = headers?.[name] ?? undefined;
    if (Array.isArray(a) || Array.isArray(b)) {
      if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length || a.some((v, i) => v !== b[i])) return false;
    } else if (a !== b) return false;
  }
  return true;
}

/**
 * undici gives a response with Last-Modified and nothing else a freshness of 10% of its age, without a
 * limit: a file last changed three years ago would be fresh for four months. A shared cache in front of
 * many machines caps it (as Squid's refresh_pattern does); explicit freshness is left as the origin said.
 */
function capHeuristicFreshness(value: CacheValue): CacheValue {
  const cc = value.cacheControlDirectives ?? {};
  const explicit = cc['max-age'] !== undefined || cc['s-maxage'] !== undefined || value.headers.expires !== undefined || cc.immutable;
  if (explicit || value.staleAt - value.cachedAt <= HEURISTIC_CAP_MS) return value;
  const staleAt = value.cachedAt + HEURISTIC_CAP_MS;
  return { ...value, staleAt, deleteAt: Math.min(value.deleteAt, staleAt + HEURISTIC_CAP_MS) };
}
