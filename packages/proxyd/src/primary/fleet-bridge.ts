/**
 * The fleet bridge (--redis URL), run by the primary: it joins this proxyd's shared-memory bans and rate
 * limits to every other proxyd using the same Redis or Valkey. Nothing here is on a request's path: the
 * serving threads decide on shared memory alone, as without --redis, and the bridge moves state between
 * that memory and the store on timers. When the store is away, each instance limits on its own.
 *
 *   bans out   every 100 ms it reads the ban table (ClientLimits.bans(), a scan of 4,096 slots). A ban
 *              made here that it has not seen yet is published:
 *                SET proxyd:ban:<key> <json> PX <left>   (for an instance that starts or heals later)
 *                PUBLISH proxyd:bans <json>              (for the ones listening now)
 *              A ban that vanished before its end was lifted (/api/bans/lift): DEL + PUBLISH a lift.
 *              Bans that came from the store are marked "fleet" in the table and never sent back, and
 *              our own messages coming back on the channel are ignored: no echo.
 *   bans in    a second connection subscribes to proxyd:bans; a ban is written into the shared ban table
 *              (ClientLimits.applyBan), so the primary's accept check and the serving threads' check both
 *              enforce it, and logged once with the instance it came from. On every (re)connect the
 *              bridge SCANs proxyd:ban:* and applies what it finds, then re-publishes the bans it made
 *              itself (one made while the store was away reaches the fleet when it returns). A lift
 *              published while an instance was cut off from the store does not reach it: its copy of
 *              the ban runs until it ends.
 *   rates      the serving threads count each request they allow (one Atomics.add on the key's
 *              fleetCount word). Every 200 ms the bridge takes those counts (zeroing them) and adds each
 *              key's to a GCRA kept in the store, in one Lua script per key run by the store itself
 *              (atomic there, timed by the store's clock, so the instances' clocks do not matter):
 *                tat = max(tat, now) + count × T;  wait = tat − now − τ
 *              with T and τ those of --rate-limit/--rate-burst. A positive wait is written into the
 *              key's fleetUntil word; takeRequest refuses (429, Retry-After) until then.
 *
 * How close the fleet's rate limit is. Each instance admits on its local GCRA between two syncs, so the
 * fleet can pass the limit by at most what N instances admit in one sync period plus the store's round
 * trip — about N × (rate × 0.2 s) requests, and at a key's very first moment N bursts instead of one.
 * Every admitted request is charged to the store's TAT all the same, so the overshoot is paid back by a
 * longer refusal: over any stretch of seconds the fleet's total stays at the rate (fleet.test measures
 * it). The exact alternative, a store round trip per request, would put Redis on the request path.
 *
 * Redis away. node-redis reconnects by itself (every 50 ms doubling to 2 s, for ever; connect timeout
 * 1 s); commands are refused at once while it is away (no offline queue), so nothing piles up and the
 * event loop never waits on it. The change is logged once each way (fleet-store-down: "limiting
 * locally"; fleet-store-up: "fleet store back"), shown as proxyd_fleet_store_up, and every error is
 * counted (proxyd_fleet_errors_total). While it is away the rate counts are dropped, not saved up: a
 * backlog charged at once would refuse clients for what they did minutes ago.
 */
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { GcraRate } from '@proxyd/sync/gcra';
import type { Stats } from '@proxyd/sync/stats';
import { redactRedisUrl } from '../config/redis-url.ts';
import type { ClientLimits } from '../limits/client-limits.ts';
import type { EventLog } from '../memory/event-log.ts';
import type { StatName } from '../memory/stats-names.ts';

export const BANS_CHANNEL = 'proxyd:bans';
export const BAN_KEY_PREFIX = 'proxyd:ban:';
export const RATE_KEY_PREFIX = 'proxyd:rate:';
const BAN_POLL_MS = 100;
const RATE_SYNC_MS = 200;

/**
 * The fleet's GCRA for one key, batched: KEYS[1] holds the TAT (ms on the store's clock); ARGV: the
 * requests admitted since the last sync, T and τ in ms. Returns the ms until the key may go on (0: now).
 */
const FLEET_TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.1f', tat), 'PX', math.ceil(tat - now) + 1000)
local wait = tat - now - tonumber(ARGV[3])
if wait <= 0 then return 0 end
return math.ceil(wait)
`;
const FLEET_TAKE_SHA = createHash('sha1').update(FLEET_TAKE).digest('hex');

/** What goes through the channel and into proxyd:ban:<key>. */
type FleetMessage = { type: 'ban'; key: string; detector: string; offences: number; leftMs: number; origin: string } | { type: 'lift'; key: string; origin: string };

export interface FleetBridge {
  close(): Promise<void>;
}

export interface FleetParts {
  url: string;
  /** How this instance names itself to the others (hostname:port). */
  instance: string;
  limits: ClientLimits;
  stats: Stats<StatName>;
  log: EventLog;
  /** The request rate now in force (a reload may change it), or undefined with --rate-limit off. */
  rate: () => GcraRate | undefined;
}

/** Reconnect after 50 ms, doubling up to 2 s, for as long as it takes. */
function retryDelay(retries: number): number {
  return Math.min(2000, 50 * 2 ** Math.min(retries, 6));
}

export function startFleetBridge(parts: FleetParts): FleetBridge {
  const { limits, stats, log, instance } = parts;
  const where = redactRedisUrl(parts.url);
  const commands = createClient({ url: parts.url, disableOfflineQueue: true, pingInterval: 5000, socket: { connectTimeout: 1000, reconnectStrategy: retryDelay } });
  const listener = commands.duplicate();
  let up: boolean | undefined; // undefined until the first verdict
  let closing = false;
  let lastError = '';

  /** Count an error and keep its text for the down line; an 'error' event left unhandled would end the process. */
  function noteError(err: unknown): void {
    stats.add('fleetErrors');
    lastError = err instanceof Error ? err.message || err.constructor.name : String(err);
    judge(true);
  }
  commands.on('error', noteError);
  listener.on('error', noteError);
  for (const client of [commands, listener]) for (const event of ['ready', 'end', 'reconnecting']) client.on(event, () => judge(false));

  /**
   * Up when both connections are ready; a change is logged once and shown in the gauge. While starting
   * (one connection ready, the other a moment behind) "not yet" is not "down": only an error or the
   * start-up timer below may call the store unreachable before it was ever up.
   */
  function judge(failed: boolean): void {
    if (closing) return;
    const now = commands.isReady && listener.isReady;
    if (now === up || (!now && up === undefined && !failed)) return;
    const first = up === undefined;
    up = now;
    stats.set('fleetStoreUp', now ? 1 : 0);
    if (now) {
      log.write({ event: 'fleet-store-up', level: first ? 'info' : 'warn', store: where, instance, message: first ? 'fleet store connected: bans and rate limits shared' : 'fleet store back: bans and rate limits shared again' });
      void resync();
    } else {
      log.write({ event: 'fleet-store-down', level: 'warn', store: where, instance, error: lastError || 'connection lost', message: 'fleet store unreachable: limiting locally until it is back' });
    }
  }

  let subscribed = false; // once subscribed, node-redis subscribes again by itself after a reconnect

  // ---- bans ---------------------------------------------------------------------------------------
  /** The bans last seen in the table: key → when it began (wall ms) and when it ends. */
  const known = new Map<string, { since: number; until: number }>();

  function pollBans(): void {
    const now = Date.now();
    const seen = new Set<string>();
    for (const ban of limits.bans()) {
      seen.add(ban.key);
      const before = known.get(ban.key);
      if (before && Math.abs(before.since - ban.since) <= 5) continue; // the same ban (its times are recomputed each read)
      known.set(ban.key, { since: ban.since, until: ban.until });
      if (ban.origin === 'local') publish({ type: 'ban', key: ban.key, detector: ban.detector, offences: ban.offences, leftMs: ban.leftMs, origin: instance });
    }
    for (const [key, ban] of known) {
      if (seen.has(key)) continue;
      known.delete(key);
      if (ban.until > now + 250) publish({ type: 'lift', key, origin: instance }); // ended early: lifted here
    }
  }

  function publish(message: FleetMessage): void {
    if (!up) return; // resync() re-publishes our bans when the store is back
    const text = JSON.stringify(message);
    const multi = commands.multi();
    if (message.type === 'ban') {
      multi.set(BAN_KEY_PREFIX + message.key, text, { expiration: { type: 'PX', value: Math.max(1, message.leftMs) } });
      stats.add('fleetBansPublished');
    } else multi.del(BAN_KEY_PREFIX + message.key);
    multi.publish(BANS_CHANNEL, text);
    multi.exec().catch(noteError);
  }

  function onMessage(text: string): void {
    let message: FleetMessage;
    try {
      message = JSON.parse(text) as FleetMessage;
    } catch {
      stats.add('fleetErrors');
      return;
    }
    if (typeof message?.key !== 'string' || message.origin === instance) return; // our own, coming back
    // Applied: read the table now, so that a lift here in the next moment is known to be one.
    if (message.type === 'ban') {
      if (limits.applyBan(message)) pollBans();
    } else if (message.type === 'lift') {
      known.delete(message.key); // so that pollBans does not take it for a lift made here
      limits.lift(message.key, `fleet (${String(message.origin)})`);
    }
  }

  /** On (re)connect: apply the fleet's bans in force, then publish ours (made while away, or before it came). */
  async function resync(): Promise<void> {
    try {
      if (!subscribed) {
        await listener.subscribe(BANS_CHANNEL, onMessage);
        subscribed = true;
      }
      for await (const batch of commands.scanIterator({ MATCH: `${BAN_KEY_PREFIX}*`, COUNT: 500 })) {
        for (const name of batch) {
          const [text, left] = await Promise.all([commands.get(name), commands.pTTL(name)]);
          if (typeof text !== 'string' || !(left > 0)) continue;
          const message = JSON.parse(text) as FleetMessage;
          if (message.type === 'ban' && message.origin !== instance) limits.applyBan({ ...message, leftMs: left });
        }
      }
      pollBans();
      for (const ban of limits.bans()) {
        if (ban.origin === 'local') publish({ type: 'ban', key: ban.key, detector: ban.detector, offences: ban.offences, leftMs: ban.leftMs, origin: instance });
      }
    } catch (err) {
      noteError(err);
    }
  }

  // ---- rates --------------------------------------------------------------------------------------
  let syncing = false;
  /** The 'requests' counter at the last two rounds: unchanged for two rounds, there is nothing to scan. */
  let requestsSeen = [-1, -1];

  function syncRates(): void {
    // A request is counted in Stats before its limit is taken, so a round later its count is in its
    // word; one that lands later still (a user's limit, taken after the password check) stays in its
    // word and goes with the next busy round. An idle proxy skips the scan (1.5–5 ms for 65,536 slots).
    const requests = stats.get('requests');
    const quiet = requests === requestsSeen[0];
    requestsSeen = [requestsSeen[1]!, requests];
    if (quiet) return;
    const rate = parts.rate();
    if (!up || rate === undefined) {
      limits.takeFleetCounts(); // dropped, not saved up (see the top comment)
      return;
    }
    if (syncing) return; // the last round is still out: its keys' counts wait for the next
    const counts = limits.takeFleetCounts();
    if (counts.length === 0) return;
    syncing = true;
    const interval = String(Number(rate.intervalNs) / 1e6);
    const tolerance = String(Number(rate.toleranceNs) / 1e6);
    // One script call per key, all sent in one go (node-redis pipelines the commands of one tick).
    void Promise.all(
      counts.map(async ({ key, count }) => {
        const args = { keys: [RATE_KEY_PREFIX + key], arguments: [String(count), interval, tolerance] };
        let wait: unknown;
        try {
          wait = await commands.evalSha(FLEET_TAKE_SHA, args);
        } catch (err) {
          if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
          wait = await commands.eval(FLEET_TAKE, args); // the store forgot the script (restart, flush): send it whole
        }
        if (typeof wait === 'number' && wait > 0) limits.limitFleet(key, wait);
      }),
    )
      .catch(noteError)
      .finally(() => (syncing = false));
  }

  // Connecting retries for ever: never awaited here, so the proxy serves from the first moment.
  commands.connect().catch(noteError);
  listener.connect().catch(noteError);
  const startTimer = setTimeout(() => judge(true), 2000); // still not up: say so
  startTimer.unref();
  const banTimer = setInterval(pollBans, BAN_POLL_MS);
  const rateTimer = setInterval(syncRates, RATE_SYNC_MS);
  banTimer.unref();
  rateTimer.unref();
  stats.set('fleetStoreUp', 0);

  return {
    async close() {
      pollBans(); // a ban made in the last moments still goes out
      closing = true;
      clearTimeout(startTimer);
      clearInterval(banTimer);
      clearInterval(rateTimer);
      await Promise.race([Promise.allSettled([commands.close(), listener.close()]), new Promise((r) => setTimeout(r, 1000))]);
      for (const client of [commands, listener]) if (client.isOpen) client.destroy();
    },
  };
}
