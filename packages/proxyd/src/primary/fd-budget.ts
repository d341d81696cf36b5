// The open-file budget (issue 20). Every client connection is a descriptor, and a forwarded one or a
// tunnel a second (the upstream socket); the process has RLIMIT_NOFILE of them. Past it, accept() and
// the workers' connects fail with EMFILE: the client that gets a 502 was already admitted. So the primary
// counts what its clients will need and refuses a newcomer at accept (503, like a full queue) while
// there is still room for everyone already in.
//
// Counting is arithmetic on numbers the primary already has, not a readdir of /proc/self/fd per accept:
//   in use ≈ 2 × permits held (client + upstream) + 1 × each waiting client + refusals still closing
// against   budget = limit − reserve, where reserve = what the process held once its threads were up
// (listeners, log files, the cache file, each thread's epoll and eventfds) plus headroom for what the
// count does not see: DNS, admin connections, files opened on reload.
// The estimate is short where the workers' upstream pools keep more connections than they have clients
// (measured, scale.ts: 7,280 upstream connections to one origin for 4,000 keep-alive clients, each with
// one request in flight, when the proxy was behind). So at most every 100 ms the count is corrected by
// the kernel's own: on Linux 6.2+ `stat /proc/self/fd` gives the number of open descriptors as its size
// (a bitmap count, not a listing — a readdir of 9,000 entries took 50–600 ms on this machine); between
// two readings the estimate's change is added to the last reading. Older kernels say 0: estimate only.
//
// Node raises its soft limit to the hard one at start, so the limit read here (after start) is the
// one that counts: `ulimit -Hn` of the shell, LimitNOFILE= of a systemd unit.
import { readdirSync } from 'node:fs';
import { headroom, kernelDescriptorCount } from '../limits/open-files.ts';

export { kernelDescriptorCount, parseOpenFileLimit, readOpenFileLimit } from '../limits/open-files.ts';

/** Descriptors one held client is counted for: its socket and its upstream socket. */
export const FDS_PER_CLIENT = 2;
/** Refusals still closing beyond which a refused client is closed at once, without a 503 (bounded). */
const MAX_CLOSING_REFUSALS = 32;
/** The accepted socket whose admission is being decided: open, and in the kernel's count already. */
const NEWCOMER = 1;
/** How old the kernel's count may be before an accept reads it again. */
const RECOUNT_MS = 100;

/** Descriptors open now (once, at start: a readdir is not for every accept), or undefined off Linux. */
export function countOpenDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // the directory's own descriptor, open while it is read
  } catch {
    return undefined;
  }
}

export interface BudgetEpisode {
  /** When the first client was refused (ms since the epoch). */
  since: number;
  refused: number;
}

export class FdBudget {
  /** The soft RLIMIT_NOFILE (undefined: not known, no budget kept). */
  readonly limit: number | undefined;
  /** Descriptors kept for the proxy itself. */
  readonly reserve: number;
  /** limit − reserve (Infinity with no known limit). */
  readonly budget: number;
  /** Refusal sockets written to and not yet closed (they hold a descriptor too). */
  private closing = 0;
  /** Set while clients are being refused, from the first refusal until there is room again. */
  episode: BudgetEpisode | undefined;
  /** The kernel's count at the last reading, less the estimate then: what the estimate does not see. */
  private unseen = 0;
  private countedAt = -Infinity;
  private readonly openAtStart: number;
  /** Where the kernel's count comes from (a parameter for the tests). */
  private readonly recount: () => number;

  constructor(limit: number | undefined, openAtStart: number, recount: () => number = kernelDescriptorCount) {
    this.limit = limit;
    this.openAtStart = openAtStart;
    this.recount = recount;
    // Headroom: 64, plus 1% of the limit for the upstream sockets that outlive their client (keep-alive
    // for up to 4 s, upstream-pool.ts), which grow with traffic; the serving threads give back their idle
    // ones before this is reached (worker/idle-upstreams.ts).
    this.reserve = openAtStart + headroom(limit ?? 0);
    this.budget = limit === undefined ? Infinity : Math.max(0, limit - this.reserve);
  }

  /** How many clients fit at once, all of them holding two descriptors (Infinity with no known limit). */
  get clients(): number {
    return Math.floor(this.budget / FDS_PER_CLIENT);
  }

  /** What --max-clients and --max-waiting need at most: every permit held, the queue full. */
  static needed(maxClients: number, maxWaiting: number): number {
    return FDS_PER_CLIENT * maxClients + maxWaiting;
  }

  /**
   * In use now by clients: the estimate, plus what the last kernel count showed beyond it. Called at
   * accept, with the newcomer's socket open (the kernel's count has it; the estimate does not).
   */
  inUse(held: number, waiting: number): number {
    const estimate = FDS_PER_CLIENT * held + waiting + this.closing;
    if (this.limit === undefined) return estimate;
    const now = performance.now();
    if (now - this.countedAt >= RECOUNT_MS) {
      this.countedAt = now;
      const counted = this.recount();
      // 0: the kernel does not say (before 6.2). The proxy's own descriptors are in the reserve already.
      // The newcomer being decided on is open already (called at accept): hasRoom counts it in its +2.
      this.unseen = counted > 0 ? Math.max(0, counted - NEWCOMER - this.openAtStart - estimate) : 0;
    }
    return estimate + this.unseen;
  }

  /** Is there room for one more client (counted as admitted at once: two descriptors)? */
  hasRoom(held: number, waiting: number): boolean {
    return this.inUse(held, waiting) + FDS_PER_CLIENT <= this.budget;
  }

  /**
   * A refused client's socket stays open while the 503 is written and the client closes; past a few
   * dozen such, close at once (false: do not answer) so that refusals cannot eat the headroom.
   */
  mayAnswerRefusal(): boolean {
    return this.closing < MAX_CLOSING_REFUSALS;
  }

  refusalOpened(): void {
    this.closing++;
  }

  refusalClosed(): void {
    this.closing--;
  }
}
