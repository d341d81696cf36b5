/**
 * Per-client limits, detectors and bans: the decisions, made on the shared tables (memory/limit-tables.ts)
 * so that every thread decides alike — with four workers a client gets the rate it gets with one.
 *
 *   primary, at accept (before a permit or a thread):  bannedFor() · takeConnection() (--conn-rate)
 *   serving threads, per request:                      takeRequest() (--rate-limit) · takeUser()
 *   serving threads, on something suspicious:          note(detector) → counted / over / banned
 *   admin (through the primary's view):                bans() · lift() · hottest()
 *   primary, with --redis (primary/fleet-bridge.ts):   applyBan() · takeFleetCounts() · limitFleet()
 *
 * A detector counts one kind of event per client in a sliding window (WindowCounter; the scan detector
 * counts distinct destinations, DistinctWindow). At its threshold the client is banned — unless it is in
 * --ban-exempt or --ban-time is 0: then it is only "over", and the caller refuses what it can (429 for a
 * password guesser). A ban is one compare-and-swap on the ban's expiry word: of all the threads whose
 * events cross a threshold at once, exactly one moves the expiry from the past into the future, and only
 * that one counts the ban and writes its log line. Every later event meets a ban in force and writes
 * nothing, so a ban is one log line however hard its client knocks. A repeat offender's ban doubles each
 * time (--ban-time × 2^offences, at most --ban-time-max); a client whose last ban ended more than
 * --ban-time-max ago starts again from --ban-time.
 *
 * With --redis the fleet joins in through the primary, never on the request path: takeRequest() also
 * counts each allowed request in the key's fleetCount word (one Atomics.add) and refuses while the key's
 * fleetUntil word is in the future (one load); the primary's fleet bridge drains the counts into the
 * store and sets fleetUntil from the fleet's answer. A ban from another instance arrives through
 * applyBan(), marked as the fleet's so that it is not published back.
 */
import type net from 'node:net';
import { Gcra, gcraRate, type GcraRate } from '@proxyd/sync/gcra';
import { KeyTable } from '@proxyd/sync/key-table';
import { DistinctWindow, WindowCounter } from '@proxyd/sync/window-counter';
import type { Stats } from '@proxyd/sync/stats';
import { formatDuration } from '../config/duration.ts';
import type { ProxyOptions } from '../config/options.ts';
import type { EventLog } from '../memory/event-log.ts';
import { BAN_BIG, BAN_INT, BAN_ORIGIN, CLIENT_WORD, type LimitTables } from '../memory/limit-tables.ts';
import type { StatName } from '../memory/stats-names.ts';
import { inList, rule } from '../policy/address-rules.ts';
import { userKey } from './client-key.ts';

/** What each detector counts, the option that sets its threshold, and its counter in Stats. */
export const DETECTORS = {
  scan: { word: CLIENT_WORD.scan, threshold: 'banScan', stat: 'bansScan', counts: 'distinct refused CONNECT destinations' },
  'auth-failures': { word: CLIENT_WORD.authFailures, threshold: 'banAuthFailures', stat: 'bansAuthFailures', counts: 'wrong passwords' },
  'bad-requests': { word: CLIENT_WORD.badRequests, threshold: 'banBadRequests', stat: 'bansBadRequests', counts: 'malformed requests' },
  refusals: { word: CLIENT_WORD.refusals, threshold: 'banRefusals', stat: 'bansRefusals', counts: 'requests for forbidden destinations or blocked ports' },
  errors: { word: CLIENT_WORD.errors, threshold: 'banErrors', stat: 'bansErrors', counts: 'upstream errors' },
  'rate-limited': { word: CLIENT_WORD.rateLimited, threshold: 'banRateLimited', stat: 'bansRateLimited', counts: 'requests refused by --rate-limit' },
} as const satisfies Record<string, { word: number; threshold: keyof ProxyOptions; stat: StatName; counts: string }>;

export type Detector = keyof typeof DETECTORS;
export const DETECTOR_NAMES = Object.keys(DETECTORS) as Detector[];

/** A client as the limits see it; the serving thread keeps the slot it found on the connection. */
export interface LimitedClient {
  /** clientKey(): the address, or its IPv6 network. */
  key: string;
  address: string;
  /** Its slot in the clients table, −1 until looked up; valid while the slot still holds limitHash. */
  limitSlot: number;
  limitHash: bigint;
}

export type Noted = 'off' | 'counted' | 'over' | 'banned';

export interface BanInfo {
  key: string;
  detector: Detector | 'unknown';
  offences: number;
  since: number;
  until: number;
  leftMs: number;
  /** Made by this instance, or applied from the fleet store (--redis). */
  origin: 'local' | 'fleet';
}

/** Requests a key was allowed here since the last takeFleetCounts() (--redis). */
export interface FleetCount {
  key: string;
  count: number;
}

export interface HotKey {
  key: string;
  /** Requests it could make at once now (undefined with --rate-limit off). */
  tokens: number | undefined;
  burst: number | undefined;
  /** Milliseconds since it was last seen. */
  idleMs: number;
}

/**
 * Now, in nanoseconds of the monotonic clock: the same clock in every thread of the process, already a
 * BigInt (no conversion on the hot path: half the cost of BigInt(performance.timeOrigin + now())), and
 * unmoved when the wall clock is set. Shown times are converted to the wall clock (wallMs).
 */
export const nowNs = process.hrtime.bigint;

/** A monotonic time as wall-clock milliseconds since the epoch. */
function wallMs(ns: bigint, now: bigint): number {
  return Date.now() + Number(ns - now) / 1e6;
}

/** What the options say, computed once per options object (a reload makes a new one). */
interface Derived {
  options: ProxyOptions;
  request: GcraRate | undefined;
  connection: GcraRate | undefined;
  exempt: net.BlockList;
  banTimeNs: bigint;
  banTimeMaxNs: bigint;
  /** --redis is set: count allowed requests for the fleet and honour fleetUntil. */
  fleet: boolean;
}

export class ClientLimits {
  readonly #tables: LimitTables;
  readonly #stats: Stats<StatName>;
  readonly #log: EventLog;
  readonly #options: () => ProxyOptions;
  readonly #gcra: Gcra;
  readonly #windows: WindowCounter;
  readonly #distinct: DistinctWindow;
  readonly #bigWords: number;
  /** The clients' words as Int32 halves: the fleet scan reads a count without a BigInt per slot. */
  readonly #halves: Int32Array;
  #derived: Derived | undefined;

  constructor(shared: { limits: LimitTables; stats: Stats<StatName>; log: EventLog }, options: () => ProxyOptions) {
    this.#tables = shared.limits;
    this.#stats = shared.stats;
    this.#log = shared.log;
    this.#options = options;
    const { clients } = shared.limits;
    this.#gcra = new Gcra(clients.big);
    this.#windows = new WindowCounter(clients.big);
    this.#distinct = new DistinctWindow(clients.big);
    this.#bigWords = clients.bigWords;
    this.#halves = new Int32Array(clients.big.buffer, clients.big.byteOffset, clients.big.length * 2);
  }

  /** A request from `client`: 0 if it may go on, else the milliseconds until it may (Retry-After). */
  takeRequest(client: LimitedClient): number {
    const d = this.#derive();
    const rate = d.request;
    if (rate === undefined) return 0;
    const now = nowNs();
    const base = this.#slotOf(client, now) * this.#bigWords;
    return d.fleet ? this.#takeFleet(base, now, rate) : this.#take(base + CLIENT_WORD.requestTat, now, rate, 'rateLimited');
  }

  /** The same for an authenticated user's own key ("user:NAME"), beside its address's. */
  takeUser(user: string): number {
    const d = this.#derive();
    const rate = d.request;
    if (rate === undefined) return 0;
    const now = nowNs();
    const key = userKey(user);
    const base = this.#tables.clients.find(key, KeyTable.hash(key), now) * this.#bigWords;
    return d.fleet ? this.#takeFleet(base, now, rate) : this.#take(base + CLIENT_WORD.requestTat, now, rate, 'rateLimited');
  }

  /** A new connection from `key` (the primary, at accept): 0, or the milliseconds until one may come. */
  takeConnection(key: string): number {
    const rate = this.#derive().connection;
    if (rate === undefined) return 0;
    const now = nowNs();
    return this.#take(this.#tables.clients.find(key, KeyTable.hash(key), now) * this.#bigWords + CLIENT_WORD.connectionTat, now, rate, 'connRateRefused');
  }

  /** Milliseconds left of a ban on `key` (0: not banned). Claims nothing: a lookup of at most 8 words. */
  bannedFor(key: string): number {
    const { bans } = this.#tables;
    const slot = bans.peek(KeyTable.hash(key));
    if (slot < 0) return 0;
    const left = Atomics.load(bans.big, slot * bans.bigWords + BAN_BIG.until) - nowNs();
    return left > 0n ? Math.ceil(Number(left) / 1e6) : 0;
  }

  /** Is `client` already over `detector`'s threshold (without counting anything)? */
  isOver(client: LimitedClient, detector: Detector): boolean {
    const d = this.#derive();
    const threshold = d.options[DETECTORS[detector].threshold];
    if (threshold === 0) return false;
    const now = nowNs();
    const index = this.#slotOf(client, now) * this.#bigWords + DETECTORS[detector].word;
    const nowMs = Number(now / 1_000_000n);
    const count = detector === 'scan' ? this.#distinct.count(index, nowMs, d.options.banWindowMs) : this.#windows.count(index, nowMs, d.options.banWindowMs);
    return count >= threshold;
  }

  /**
   * Count one event of `detector` for `client` (`item`: the destination, for the scan detector). At the
   * threshold: banned (this call or an earlier one began the ban), or "over" for an exempt client.
   */
  note(client: LimitedClient, detector: Detector, item = ''): Noted {
    const d = this.#derive();
    const { options } = d;
    const threshold = options[DETECTORS[detector].threshold];
    if (threshold === 0) return 'off';
    const now = nowNs();
    const index = this.#slotOf(client, now) * this.#bigWords + DETECTORS[detector].word;
    const nowMs = Number(now / 1_000_000n);
    const count = detector === 'scan' ? this.#distinct.add(index, nowMs, options.banWindowMs, item) : this.#windows.add(index, nowMs, options.banWindowMs);
    if (count < threshold) return 'counted';
    if (d.banTimeNs === 0n || inList(d.exempt, client.address)) return 'over';
    this.#ban(client, detector, count, now, d);
    return 'banned';
  }

  /** Bans in force now, longest left first. */
  bans(): BanInfo[] {
    const { bans } = this.#tables;
    const now = nowNs();
    const out: BanInfo[] = [];
    for (const slot of bans.occupied()) {
      const at = slot * bans.bigWords;
      const until = Atomics.load(bans.big, at + BAN_BIG.until);
      if (until <= now) continue;
      out.push({
        key: bans.keyAt(slot),
        detector: DETECTOR_NAMES[Atomics.load(bans.int, slot * bans.intWords + BAN_INT.detector)] ?? 'unknown',
        offences: Atomics.load(bans.int, slot * bans.intWords + BAN_INT.offences),
        since: Math.round(wallMs(Atomics.load(bans.big, at + BAN_BIG.since), now)),
        until: Math.round(wallMs(until, now)),
        leftMs: Math.ceil(Number(until - now) / 1e6),
        origin: Atomics.load(bans.int, slot * bans.intWords + BAN_INT.origin) === BAN_ORIGIN.fleet ? 'fleet' : 'local',
      });
    }
    return out.sort((a, b) => b.leftMs - a.leftMs);
  }

  /** End the ban on `key` now and forget its offences. True if there was one in force; logs 'unban'. */
  lift(key: string, by: string): boolean {
    const { bans } = this.#tables;
    const slot = bans.peek(KeyTable.hash(key));
    if (slot < 0) return false;
    const at = slot * bans.bigWords + BAN_BIG.until;
    const until = Atomics.load(bans.big, at);
    if (until <= nowNs() || Atomics.compareExchange(bans.big, at, until, 0n) !== until) return false;
    Atomics.store(bans.int, slot * bans.intWords + BAN_INT.offences, 0);
    this.#log.write({ event: 'unban', level: 'warn', key, by });
    return true;
  }

  /**
   * The `n` clients nearest their rate limit (fewest requests left; with --rate-limit off, the most
   * recently seen), among those seen in the last minute, for the dashboard. A scan of the whole table
   * (65,536 slots) that keeps only the best `n` as it goes, ranks by the TAT itself (no division), and
   * reads a name and works out tokens only for those n. Measured with 60,000 clients seen in the last
   * minute, on this project's 2-core machine at a load average of 16: an object and a name for every
   * busy slot took 400 ms; this takes 16–22 ms (the admin server calls it once a second, and only while a
   * dashboard is open or /api/stats is read).
   */
  hottest(n: number): HotKey[] {
    const { clients } = this.#tables;
    const rate = this.#derive().request;
    const now = nowNs();
    const recent = now - 60_000_000_000n;
    // The best n so far, as parallel arrays sorted by rank: the latest TAT first (fewest requests left:
    // no division per slot), then the most recently seen. Tokens are worked out for those n only.
    const slots: number[] = [];
    const tats: bigint[] = [];
    const seen: bigint[] = [];
    for (let slot = 0; slot < clients.slots; slot++) {
      if (!clients.inUse(slot)) continue;
      const touched = clients.touched(slot);
      if (touched < recent) continue;
      const tat = rate ? Atomics.load(clients.big, slot * this.#bigWords + CLIENT_WORD.requestTat) : 0n;
      let at = slots.length;
      while (at > 0 && (tat > tats[at - 1]! || (tat === tats[at - 1]! && touched > seen[at - 1]!))) at--;
      if (at >= n) continue;
      slots.splice(at, 0, slot);
      tats.splice(at, 0, tat);
      seen.splice(at, 0, touched);
      if (slots.length > n) {
        slots.pop();
        tats.pop();
        seen.pop();
      }
    }
    return slots.map((slot, i) => ({
      key: clients.keyAt(slot),
      tokens: rate ? this.#gcra.available(slot * this.#bigWords + CLIENT_WORD.requestTat, now, rate) : undefined,
      burst: rate?.burst,
      idleMs: Math.round(Number(now - seen[i]!) / 1e6),
    }));
  }

  /**
   * A ban another instance made (--redis: from the fleet store), for `leftMs` more: written into the ban
   * table so that the primary's accept check and the serving threads' check both enforce it, marked as
   * the fleet's (the bridge does not publish it back), and logged once as a ban line naming its origin.
   * False when a ban in force already ends as late, give or take a second (the same ban seen again: on
   * a reconnect's reload, or one this instance made itself), or when this instance's own rules say no:
   * --ban-time 0, or the key is in its --ban-exempt. A ban is never longer than its --ban-time-max.
   */
  applyBan(ban: { key: string; detector: string; offences: number; leftMs: number; origin: string }): boolean {
    const d = this.#derive();
    if (!(ban.leftMs > 0) || d.banTimeNs === 0n || inList(d.exempt, ban.key)) return false;
    const { bans } = this.#tables;
    const now = nowNs();
    const leftNs = BigInt(Math.ceil(ban.leftMs)) * 1_000_000n;
    const next = now + (leftNs < d.banTimeMaxNs ? leftNs : d.banTimeMaxNs);
    const slot = bans.find(ban.key, KeyTable.hash(ban.key), now);
    const at = slot * bans.bigWords;
    const words = slot * bans.intWords;
    for (;;) {
      const until = Atomics.load(bans.big, at + BAN_BIG.until);
      if (until >= next - 1_000_000_000n) return false;
      if (Atomics.compareExchange(bans.big, at + BAN_BIG.until, until, next) !== until) continue;
      const detector = DETECTOR_NAMES.indexOf(ban.detector as Detector);
      Atomics.store(bans.big, at + BAN_BIG.since, now);
      Atomics.store(bans.int, words + BAN_INT.offences, Math.max(1, Math.floor(ban.offences) || 1));
      Atomics.store(bans.int, words + BAN_INT.detector, detector);
      Atomics.store(bans.int, words + BAN_INT.origin, BAN_ORIGIN.fleet);
      bans.touch(slot, next);
      this.#stats.add('fleetBansApplied');
      // The ban line's shape (fail2ban's filter reads "event":"ban","client":…), with where it came from.
      this.#log.write({
        event: 'ban',
        level: 'warn',
        client: ban.key,
        key: ban.key,
        detector: detector >= 0 ? ban.detector : 'unknown',
        banTime: formatDuration(Math.max(1000, Math.round(Number(next - now) / 1e9) * 1000)), // what is left, to the second
        offence: Math.max(1, Math.floor(ban.offences) || 1),
        until: new Date(Date.now() + Number(next - now) / 1e6).toISOString(),
        origin: ban.origin,
        fleet: true,
      });
      return true;
    }
  }

  /**
   * The requests each key was allowed since the last call, each count taken and zeroed in one exchange
   * (a request counted meanwhile lands in the next call): what the fleet bridge adds to the store. A scan
   * of the clients table that reads each slot's count as two Int32 halves (a BigInt load allocates:
   * measured on the shared 2-core machine, 65,536 slots took 7–19 ms that way and 1.5 ms at best either
   * way under load; the halves keep it to plain loads). A half read while a worker adds may be stale:
   * that count is then taken on the next round.
   */
  takeFleetCounts(): FleetCount[] {
    const { clients } = this.#tables;
    const halves = this.#halves;
    const out: FleetCount[] = [];
    for (let slot = 0; slot < clients.slots; slot++) {
      const index = slot * this.#bigWords + CLIENT_WORD.fleetCount;
      if ((Atomics.load(halves, 2 * index) | Atomics.load(halves, 2 * index + 1)) === 0) continue;
      const count = Number(Atomics.exchange(clients.big, index, 0n));
      if (count > 0) out.push({ key: clients.keyAt(slot), count });
    }
    return out;
  }

  /** The request rate in force (--rate-limit, --rate-burst), or undefined when off. */
  requestRate(): GcraRate | undefined {
    return this.#derive().request;
  }

  /** The fleet store says `key` is over the rate limit for `ms` more: refuse it here until then. */
  limitFleet(key: string, ms: number): void {
    const { clients } = this.#tables;
    const slot = clients.peek(KeyTable.hash(key));
    if (slot < 0) return;
    Atomics.store(clients.big, slot * this.#bigWords + CLIENT_WORD.fleetUntil, nowNs() + BigInt(Math.ceil(ms)) * 1_000_000n);
  }

  /** takeRequest with --redis: the fleet's verdict first (one load), then the local GCRA; an allowed request is counted for the fleet. */
  #takeFleet(base: number, now: bigint, rate: GcraRate): number {
    const big = this.#tables.clients.big;
    const until = Atomics.load(big, base + CLIENT_WORD.fleetUntil);
    if (until > now) {
      this.#stats.add('rateLimited');
      this.#stats.add('fleetRateLimited');
      return Math.ceil(Number(until - now) / 1e6);
    }
    const wait = this.#take(base + CLIENT_WORD.requestTat, now, rate, 'rateLimited');
    if (wait === 0) Atomics.add(big, base + CLIENT_WORD.fleetCount, 1n);
    return wait;
  }

  #take(index: number, now: bigint, rate: GcraRate, refusedStat: StatName): number {
    const wait = this.#gcra.take(index, now, rate);
    if (this.#gcra.retries !== 0) {
      this.#stats.add('limiterCasRetries', this.#gcra.retries);
      this.#gcra.retries = 0;
    }
    if (wait === 0n) return 0;
    this.#stats.add(refusedStat);
    return Math.ceil(Number(wait) / 1e6);
  }

  /** The client's slot: the one it found before while that slot still holds its key, else a lookup. */
  #slotOf(client: LimitedClient, now: bigint): number {
    const { clients } = this.#tables;
    if (client.limitSlot >= 0 && clients.holds(client.limitSlot, client.limitHash)) {
      clients.touch(client.limitSlot, now); // a hot key stays fresh: eviction takes the stalest
      return client.limitSlot;
    }
    if (client.limitHash === 0n) client.limitHash = KeyTable.hash(client.key);
    client.limitSlot = clients.find(client.key, client.limitHash, now);
    return client.limitSlot;
  }

  #ban(client: LimitedClient, detector: Detector, count: number, now: bigint, d: Derived): void {
    const { bans } = this.#tables;
    const slot = bans.find(client.key, KeyTable.hash(client.key), now);
    const at = slot * bans.bigWords;
    const words = slot * bans.intWords;
    for (;;) {
      const until = Atomics.load(bans.big, at + BAN_BIG.until);
      if (until > now) return; // a ban in force (begun by another event, maybe on another thread): nothing to write
      let offences = Atomics.load(bans.int, words + BAN_INT.offences);
      if (until === 0n || now - until > d.banTimeMaxNs) offences = 0; // never banned, lifted, or long forgiven
      let duration = d.banTimeNs << BigInt(Math.min(offences, 40));
      if (duration > d.banTimeMaxNs) duration = d.banTimeMaxNs;
      // The ban itself: past → future, by exactly one thread.
      if (Atomics.compareExchange(bans.big, at + BAN_BIG.until, until, now + duration) !== until) continue;
      Atomics.store(bans.big, at + BAN_BIG.since, now);
      Atomics.store(bans.int, words + BAN_INT.offences, offences + 1);
      Atomics.store(bans.int, words + BAN_INT.detector, DETECTOR_NAMES.indexOf(detector));
      Atomics.store(bans.int, words + BAN_INT.origin, BAN_ORIGIN.local);
      bans.touch(slot, now + duration); // the ban that ends first is the one a full table recycles
      this.#stats.add('bans');
      this.#stats.add(DETECTORS[detector].stat);
      const durationMs = Number(duration / 1_000_000n);
      // The one line per ban, in a stable shape (config/fail2ban/filter.d/proxyd.conf matches it).
      this.#log.write({
        event: 'ban',
        level: 'warn',
        client: client.address,
        key: client.key,
        detector,
        count: Number.isFinite(count) ? Math.round(count) : 999, // a full distinct set estimates Infinity
        threshold: d.options[DETECTORS[detector].threshold],
        window: formatDuration(d.options.banWindowMs),
        banTime: formatDuration(durationMs),
        offence: offences + 1,
        until: new Date(Date.now() + durationMs).toISOString(),
      });
      return;
    }
  }

  #derive(): Derived {
    const options = this.#options();
    if (this.#derived?.options === options) return this.#derived;
    const { rateLimit, rateBurst, connRate } = options;
    this.#derived = {
      options,
      request: rateLimit === undefined ? undefined : gcraRate(rateLimit, rateBurst > 0 ? rateBurst : Math.max(1, Math.round(rateLimit))),
      connection: connRate === 0 ? undefined : gcraRate(connRate, connRate),
      exempt: rule('ban-exempt', options.banExempt.filter((c) => c.toLowerCase() !== 'none')).list,
      banTimeNs: BigInt(options.banTimeMs) * 1_000_000n,
      banTimeMaxNs: BigInt(Math.max(options.banTimeMaxMs, options.banTimeMs)) * 1_000_000n,
      fleet: options.redis !== undefined,
    };
    return this.#derived;
  }
}
