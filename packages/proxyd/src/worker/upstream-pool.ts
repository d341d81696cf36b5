// Keep-alive connections from this serving thread to origin servers, reused across requests and client
// connections: undici's Agent (one Pool per origin). Chosen over http.Agent + http.request after
// measuring both side by side (issue 7): a minimal proxy on http.request served ~10.7k req/s, the same
// on undici's dispatch ~15–19k, because undici parses and frames without a stream object per request.
//
// Every connection it opens goes through `connect` below, which dials with the guarded lookup: the
// destination policy is checked on the address actually dialled (see guarded-lookup.ts), and is tracked
// so that the idle ones can be given back near the open-file limit (idle-upstreams.ts). A connect that
// fails for want of a descriptor (EMFILE) gives back this thread's idle sockets and dials again, a few
// times over a few hundred ms (the other threads give back theirs at their next check): a 502 for EMFILE
// only once no idle pooled socket is left to close.
import net from 'node:net';
import type { Agent } from 'undici';
import type { DestinationPolicy } from '../policy/destination-policy.ts';
import { guardedLookup } from './guarded-lookup.ts';
import { beforeConnect, giveBackIdle, isOutOfDescriptors, track } from './idle-upstreams.ts';
import { failUnlessConnectedWithin } from './upstream-errors.ts';
import { LazyDispatcher, loadUndici } from './lazy-dispatcher.ts';

export interface UpstreamSettings {
  /** The policy in force now (a reload replaces it; new connections see the new one). */
  destinations(): DestinationPolicy;
  /** How long a connect may take (--upstream-timeout), read at each connect. */
  connectTimeoutMs(): number;
  /** Under test hooks: dial loopback only, whatever the policy says. */
  loopbackOnly: boolean;
}

/** Dials again after EMFILE at most this many times, at once when idle sockets were closed, else after a wait. */
const EMFILE_RETRIES = 4;
/** About two of the other threads' checks (idle-upstreams.ts): time for them to give back theirs. */
const EMFILE_WAIT_MS = 200;

/** This thread's pool, made with its first plain-HTTP request (lazy-dispatcher.ts says why). */
export function createUpstreamPool(settings: UpstreamSettings): LazyDispatcher<Agent> {
  return new LazyDispatcher(() => makeAgent(settings));
}

function makeAgent(settings: UpstreamSettings): Agent {
  const { Agent } = loadUndici();
  return new Agent({
    // Same framing rules as Node's http client: no pipelining, answers of any size, headers up to
    // Node's limit. Timeouts are set per request (forward-http.ts) from the live options.
    pipelining: 1,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    connect(options, callback) {
      const port = Number(options.port) || 80;
      const deadline = performance.now() + settings.connectTimeoutMs();
      const dial = (attempt: number): void => {
        beforeConnect();
        const socket = net.connect({
          host: options.hostname,
          port,
          noDelay: true,
          lookup: guardedLookup(settings.destinations(), port, settings.loopbackOnly),
        });
        socket.setKeepAlive(true, 60_000);
        failUnlessConnectedWithin(socket, Math.max(1, deadline - performance.now()));
        let pending: typeof callback | undefined = callback;
        socket.once('connect', () => {
          track(socket);
          pending?.(null, socket);
          pending = undefined;
        });
        socket.on('error', (err) => {
          if (!pending) return;
          const again = isOutOfDescriptors(err) && attempt < EMFILE_RETRIES ? (giveBackIdle('emfile') > 0 ? 0 : EMFILE_WAIT_MS) : -1;
          if (again >= 0 && performance.now() + again < deadline) setTimeout(() => dial(attempt + 1), again);
          else pending(err, null);
          pending = undefined;
        });
      };
      dial(0);
    },
  });
}
