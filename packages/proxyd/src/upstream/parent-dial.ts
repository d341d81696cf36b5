// A connection to a parent proxy: TCP for an http:// parent, TLS for an https:// one (its certificate
// checked against its name, as any client checks a server's). The parent's own address is not held to
// the destination policy — the operator named it — except under the test hooks, where every proxy
// dials loopback only (guarded-lookup.ts, TEST_GUARD) and so does this.
import net from 'node:net';
import { nodeTls } from '../builtins/tls.ts';
import type { DestinationPolicy } from '../policy/destination-policy.ts';
import { ForbiddenDestinationError, guardedLookup, testGuard } from '../worker/guarded-lookup.ts';
import { upstreamTimeoutError } from '../worker/upstream-errors.ts';
import type { ParentSpec } from './parent-spec.ts';

const ANY_ADDRESS: DestinationPolicy = { check: () => undefined };

/** Dial `parent`; the socket is ready on `readyEvent(parent)`, or fails with 'error' (a timeout too). */
export function dialParent(parent: ParentSpec, o: { timeoutMs: number; loopbackOnly: boolean }): net.Socket {
  const refused = testGuard(o.loopbackOnly, parent.host); // IP literals never reach lookup()
  if (refused !== undefined) {
    const socket = new net.Socket();
    process.nextTick(() => socket.destroy(new ForbiddenDestinationError(refused, parent.host)));
    return socket;
  }
  const tcp = net.connect({ host: parent.host, port: parent.port, noDelay: true, lookup: guardedLookup(ANY_ADDRESS, parent.port, o.loopbackOnly) });
  tcp.setKeepAlive(true, 60_000);
  const socket = parent.protocol === 'https:' ? nodeTls().connect({ socket: tcp, servername: net.isIP(parent.host) ? undefined : parent.host, ALPNProtocols: ['http/1.1'] }) : tcp;
  const timer = setTimeout(() => socket.destroy(upstreamTimeoutError()), o.timeoutMs);
  const done = (): void => clearTimeout(timer);
  socket.once(readyEvent(parent), done);
  socket.once('close', done);
  if (socket !== tcp) tcp.once('error', (err) => socket.destroy(err)); // a refused TCP connect fails the TLS socket too
  return socket;
}

export function readyEvent(parent: ParentSpec): 'connect' | 'secureConnect' {
  return parent.protocol === 'https:' ? 'secureConnect' : 'connect';
}

/** A connect failure that says the parent is unwell (counted toward marking it down). */
export function isConnectFailure(err: NodeJS.ErrnoException): boolean {
  return !(err instanceof ForbiddenDestinationError);
}
