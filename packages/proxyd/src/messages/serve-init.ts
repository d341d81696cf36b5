// What the primary hands every serving thread when it starts (Piscina's workerData, or init() on the
// primary with --workers 0), and what each connection task carries. Shared here because primary/ and
// worker/ never import each other.
import type net from 'node:net';
import type { ProxyOptions } from '../config/options.ts';
import type { SharedBuffers } from '../memory/shared-state.ts';

/** Policy and identity a serving thread starts with. */
export interface ServingSetup {
  blocklist: readonly string[];
  /** htpasswd entries [user, hash], or undefined when authentication is off. */
  users: [string, string][] | undefined;
  /** PEM strings when the listener speaks TLS. */
  tls: { cert: string; key: string } | undefined;
  /** This instance's Via token (a request carrying it is a loop). */
  viaToken: string;
  ownPorts: number[];
  localAddresses: string[];
}

export interface ServeInit extends ServingSetup {
  buffers: SharedBuffers;
  options: ProxyOptions;
  testHooks: boolean;
}

/** One client connection, transferred to a serving thread. */
export interface ConnectionTask {
  socket: net.Socket;
  /** Its lease in PermitLeases: the permit is released exactly once. */
  lease: number;
  id: number;
  client: string;
  address: string;
  /** Its key for limits and bans, as the primary computed it at accept. */
  key: string;
}
