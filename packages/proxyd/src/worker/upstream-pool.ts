// Keep-alive connections from this serving thread to origin servers, reused across requests and client
// connections: undici's Agent (one Pool per origin). Chosen over http.Agent + http.request after
// measuring both side by side (issue 7): a minimal proxy on http.request served ~10.7k req/s, the same
// on undici's dispatch ~15–19k, because undici parses and frames without a stream object per request.
//
// Every connection it opens goes through `connect` below, which dials with the guarded lookup: the
// destination policy is checked on the address actually dialled (see guarded-lookup.ts).
import net from 'node:net';
import { Agent } from 'undici';
import type { DestinationPolicy } from '../policy/destination-policy.ts';
import { guardedLookup } from './guarded-lookup.ts';
import { failUnlessConnectedWithin } from './upstream-errors.ts';

export interface UpstreamSettings {
  /** The policy in force now (a reload replaces it; new connections see the new one). */
  destinations(): DestinationPolicy;
  /** How long a connect may take (--upstream-timeout), read at each connect. */
  connectTimeoutMs(): number;
  /** Under test hooks: dial loopback only, whatever the policy says. */
  loopbackOnly: boolean;
}

export function createUpstreamPool(settings: UpstreamSettings): Agent {
  return new Agent({
    // Same framing rules as Node's http client: no pipelining, answers of any size, headers up to
    // Node's limit. Timeouts are set per request (forward-http.ts) from the live options.
    pipelining: 1,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connect(options, callback) {
      const port = Number(options.port) || 80;
      const socket = net.connect({
        host: options.hostname,
        port,
        noDelay: true,
        lookup: guardedLookup(settings.destinations(), port, settings.loopbackOnly),
      });
      socket.setKeepAlive(true, 60_000);
      failUnlessConnectedWithin(socket, settings.connectTimeoutMs());
      let pending: typeof callback | undefined = callback;
      socket.once('connect', () => {
        pending?.(null, socket);
        pending = undefined;
      });
      socket.on('error', (err) => {
        pending?.(err, null);
        pending = undefined;
      });
    },
  });
}
