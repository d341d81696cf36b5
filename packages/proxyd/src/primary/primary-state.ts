// What the primary's parts (accept, admission, hand-over, reload, shutdown) share: one object, owned and
// changed by the primary thread only, so it needs no lock. What other threads must see lives in shared
// memory (state.shared) or goes to them as a message (state.policy).
import type net from 'node:net';
import type { BroadcastChannel } from 'node:worker_threads';
import type { ProxyOptions } from '../config/options.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { ClientAcl } from '../policy/client-acl.ts';
import type { Users } from '../policy/htpasswd.ts';
import type { ClientLimits } from '../limits/client-limits.ts';
import type { ClientCaps } from './client-caps.ts';
import type { FdBudget } from './fd-budget.ts';
import type { Serving } from './serving.ts';
import type { WaitHistogram } from './wait-histogram.ts';

export interface PrimaryState {
  readonly shared: SharedState;
  /** The options in force (a reload replaces the live ones). */
  options: ProxyOptions;
  /** Who may connect (rebuilt on reload). */
  acl: ClientAcl;
  /**
   * With --proxy-protocol on: the load balancers, the only peers that may connect. The client ACL then
   * applies in the serving thread, to the address in the PROXY header (the primary never reads a socket).
   */
  readonly balancers: ((address: string) => boolean) | undefined;
  /** The users of --auth-file, when authentication is on (re-read on reload). */
  users: Users | undefined;
  /** The blocklist's domains in force (re-read on reload). */
  blocklist: readonly string[];
  /** How long connections waited for a permit. */
  readonly waits: WaitHistogram;
  readonly serving: Serving;
  /** The BroadcastChannel to every serving thread: policy updates and the last step of a shutdown. */
  readonly policy: BroadcastChannel;
  /** Connections handed to a serving thread whose task has not yet reported back (shutdown waits for them). */
  readonly tasks: Set<Promise<unknown>>;
  /** Accepted connections not yet handed to a serving thread (still the primary's to close). */
  readonly queued: Set<net.Socket>;
  /** The last connection id given out. */
  lastConnectionId: number;
  /** Per-client limits and bans, on shared memory (limits/). */
  readonly limits: ClientLimits;
  /** Open connections per client key, for --max-conns-per-client (this thread's alone). */
  readonly caps: ClientCaps;
  /** The open-file budget: refuse at accept before the process runs out of descriptors. */
  readonly fdBudget: FdBudget;
}

/** One accepted client connection, as the primary names it in the log. */
export interface AcceptedConnection {
  id: number;
  /** "address:port", for the log. */
  client: string;
  /** The client's address alone, for policy. */
  address: string;
  /** Its key for limits and bans (limits/client-key.ts). */
  key: string;
  /** True while it counts in `caps`: until its task settles, or it closes before being handed over. */
  counted: boolean;
  /** Set once the socket is transferred: its 'close' here is the transfer, not the client leaving. */
  handedOver: boolean;
}
