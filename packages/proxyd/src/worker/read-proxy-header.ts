/**
 * Behind a load balancer (--proxy-protocol on): read the PROXY header off a fresh connection, before
 * anything else reads it. Here, in the worker, and not on the primary: a socket can be transferred to a
 * thread only before it starts reading, so the primary never reads. The bytes after the header are put
 * back (unshift) for the HTTP parser, so the client's request is untouched.
 *
 * A connection without a valid header, one that sends more than a header may hold, or one that has not
 * sent a whole header within the timeout is closed; the caller counts and logs it.
 */
import type net from 'node:net';
import { parseProxyHeader, V2_MAX } from './proxy-protocol.ts';

export type HeaderRead = { ok: true; version: 1 | 2; source: { address: string; port: number } | undefined } | { ok: false; why: string };

export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<HeaderRead> {
  return new Promise((resolve) => {
    let received: Buffer = Buffer.alloc(0);
    const finish = (result: HeaderRead): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      received = received.length ? Buffer.concat([received, chunk]) : chunk;
      const header = parseProxyHeader(received);
      if (header.kind === 'incomplete') {
        // parseProxyHeader bounds both versions; this only stops a peer that sends an endless prefix.
        if (received.length > V2_MAX) finish({ ok: false, why: 'header too long' });
        return;
      }
      if (header.kind === 'invalid') return finish({ ok: false, why: header.why });
      finish({ ok: true, version: header.version, source: header.source });
      if (received.length > header.length) socket.unshift(received.subarray(header.length));
    };
    const onEnd = (): void => finish({ ok: false, why: received.length ? 'closed inside the header' : 'closed before a header' });
    const timer = setTimeout(() => finish({ ok: false, why: `no complete header within ${timeoutMs} ms` }), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}
