// Relay bytes both ways between two sockets, with back-pressure (the faster side pauses while the other
// drains) and half-close (one side's FIN becomes the other side's FIN; the other direction keeps flowing).
//
// Written out rather than a.pipe(b) / stream.pipeline(): a tunnel is mostly idle, and pipe() keeps nine
// closures and its own state per direction for its whole life. Three listeners per direction do the same
// job here (measured with heap snapshots over 2,000 idle tunnels, issue 7), and show the mechanism.
import type net from 'node:net';
import { forwardsItsReads } from './pooled-reads.ts';

/** Relay a ↔ b; `onDone` runs once, when both sockets have closed. */
export function relay(a: net.Socket, b: net.Socket, onDone: () => void): void {
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  forward(a, b);
  forward(b, a);
  let open = 2;
  const closed = (): void => {
    if (--open === 0) onDone();
  };
  // An error on either side ends both: a tunnel with one dead end is no tunnel.
  const destroyBoth = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', destroyBoth);
  b.on('error', destroyBoth);
  a.on('close', () => {
    b.destroySoon(); // what b still has to write goes out first
    closed();
  });
  b.on('close', () => {
    a.destroySoon();
    closed();
  });
}

/** One direction: what `from` reads, `to` writes; `from` waits while `to` is full; FIN follows the data. */
function forward(from: net.Socket, to: net.Socket): void {
  if (!forwardsItsReads(from)) {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause(); // to's buffer is over its high-water mark
    });
  } // else a socket dialled by connectForwardingTo() writes its reads to `to` itself (pooled-reads.ts)
  to.on('drain', () => from.resume());
  // A client that closed while it waited for a permit has sent its FIN before the tunnel exists: its
  // 'end' is already past, so pass the FIN on now (else the tunnel, and its permit, wait for the idle timeout).
  if (from.readableEnded) to.end();
  else from.on('end', () => to.end());
}
