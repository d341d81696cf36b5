// What a serving thread knows: the shared memory, the options, the current policy, the upstream pool.
import type tls from 'node:tls';
import type { ClientAcl } from '../policy/client-acl.ts';
import type { Agent } from 'undici';
import type { LazyDispatcher } from './lazy-dispatcher.ts';
import type { SharedStore } from '../cache/shared-store.ts';
import type { ParentRouter } from '../upstream/parent-route.ts';
import type { ProxyOptions } from '../config/options.ts';
import type { Blocklist } from '../policy/blocklist.ts';
import type { DestinationPolicy } from '../policy/destination-policy.ts';
import type { SharedState } from '../memory/shared-state.ts';
import type { CredentialCache } from '../policy/credential-cache.ts';
import type { ClientLimits, LimitedClient } from '../limits/client-limits.ts';

export interface ServeContext {
  shared: SharedState;
  options: ProxyOptions;
  blocklist: Blocklist;
  destinations: DestinationPolicy;
  /** Who may use the proxy: applied here only behind a load balancer (--proxy-protocol), to the header's address. */
  clientAcl: ClientAcl;
  /** Proxy-Authorization checks, with this thread's cache of verified credentials. */
  auth: CredentialCache;
  /** This proxy instance's token in Via headers; seeing it on a request means a loop. */
  viaToken: string;
  /** TLS for the listener (--tls-cert/--tls-key): terminated here, in the worker. */
  tls: tls.SecureContext | undefined;
  /** Keep-alive connections to origin servers, reused across requests and connections (upstream-pool.ts), made on first use. */
  upstream: LazyDispatcher<Agent>;
  /** Parent proxies: the route of each request (--parent, --parent-for, …), and a keep-alive pool per parent. */
  parents: ParentRouter;
  parentPool: LazyDispatcher<Agent>;
  /** Per-client rate limits and detectors, on the shared tables every thread sees. */
  limits: ClientLimits;
  /** The shared cache, when it is on: the dispatcher plain HTTP goes through, and its store (PURGE). */
  cache: { dispatcher: LazyDispatcher; store: SharedStore } | undefined;
  /** Test hooks (PROXYD_TEST_HOOKS=1): a request may ask the worker to crash. */
  testHooks: boolean;
}

/** Per client connection: who it is, for the log, and its key (and cached slot) for limits and detectors. */
export interface ConnectionInfo extends LimitedClient {
  id: number;
  client: string;
}
