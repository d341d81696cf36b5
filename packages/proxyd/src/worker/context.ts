// What a serving thread knows: the shared memory, the options, the current blocklist, the upstream pool.
import http from 'node:http';
import type { ProxyOptions } from '../config/options.ts';
import type { Blocklist } from '../policy/blocklist.ts';
import type { SharedState } from '../shared/shared-state.ts';

export interface ServeContext {
  shared: SharedState;
  options: ProxyOptions;
  blocklist: Blocklist;
  /** Keep-alive connections to upstream servers, reused across requests and connections. */
  agent: http.Agent;
  /** Test hooks (PROXYD_TEST_HOOKS=1): a request may ask the worker to crash. */
  testHooks: boolean;
}

/** Per client connection: who it is, for the log. */
export interface ConnectionInfo {
  id: number;
  client: string;
}
