// The shared memory of limits and bans (limits/ decides with it): two KeyTables (@proxyd/sync), one
// SharedArrayBuffer each, created by the primary and attached by every serving thread.
//
//   clients  one slot per client key (an address, an IPv6 /64, "user:NAME"), 65,536 slots (~11 MiB,
//            fixed): two GCRA times, five detectors' sliding windows, and with --redis the fleet's two
//            words (requests allowed since the last sync with the store; fleet-limited until), all BigInt64
//   bans     one slot per banned key, 4,096 slots: its expiry and start (BigInt64, monotonic ns) and its offence
//            count, detector and origin (Int32: 0 made here, 1 applied from the fleet store). A ban's touched time is its expiry, so when the table is full
//            the slot recycled is the ban that ended first (an expired one if there is any).
import { KeyTable } from '@proxyd/sync/key-table';

export const CLIENT_SLOTS = 65_536;
export const BAN_SLOTS = 4096;

/** BigInt64 words of a client slot, by what they hold (a window counter takes two words). */
export const CLIENT_WORD = {
  requestTat: 0, // GCRA: --rate-limit
  connectionTat: 1, // GCRA: --conn-rate
  scan: 2, // DistinctWindow: refused CONNECT destinations
  authFailures: 4, // WindowCounter
  badRequests: 6,
  refusals: 8,
  errors: 10,
  fleetCount: 12, // --redis: requests allowed here since the primary last added them to the store (Atomics.add / exchange)
  fleetUntil: 13, // --redis: monotonic ns until which the fleet's rate limit refuses this key (set by the primary)
  rateLimited: 14, // WindowCounter: requests refused by --rate-limit (a client that does not heed Retry-After)
} as const;
const CLIENT_BIG_WORDS = 16;

/** Words of a ban slot. */
export const BAN_BIG = { until: 0, since: 1 } as const;
export const BAN_INT = { offences: 0, detector: 1, origin: 2 } as const;
/** BAN_INT.origin: made by this instance, or applied from the fleet store (never published back). */
export const BAN_ORIGIN = { local: 0, fleet: 1 } as const;

export interface LimitTables {
  clients: KeyTable;
  bans: KeyTable;
}

export function createLimitTables(): LimitTables {
  return {
    clients: KeyTable.create({ slots: CLIENT_SLOTS, bigWords: CLIENT_BIG_WORDS, intWords: 0 }),
    bans: KeyTable.create({ slots: BAN_SLOTS, bigWords: 2, intWords: 3 }),
  };
}

export function attachLimitTables(buffers: { clients: SharedArrayBuffer; bans: SharedArrayBuffer }): LimitTables {
  return { clients: new KeyTable(buffers.clients), bans: new KeyTable(buffers.bans) };
}
