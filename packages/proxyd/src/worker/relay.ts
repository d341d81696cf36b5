// Relay bytes both ways between two sockets, with back-pressure (pipe pauses the faster side) and
// half-close (one side's FIN becomes the other side's FIN; the other direction keeps flowing).
import type net from 'node:net';

/** Pipe a ↔ b; `onDone` runs once, when both sockets have closed. */
export function relay(a: net.Socket, b: net.Socket, onDone: () => void): void {
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  a.pipe(b);
  b.pipe(a);
  let open = 2;
  const closed = (): void => {
    if (--open === 0) onDone();
  };
  // An error on either side ends both: a tunnel with one dead end is no tunnel.
  const destroyBoth = (): void => {
    a.destroy();
    b.destroy();
  };
  a.once('error', destroyBoth);
  b.once('error', destroyBoth);
  a.once('close', () => {
    b.destroySoon();
    closed();
  });
  b.once('close', () => {
    a.destroySoon();
    closed();
  });
}
