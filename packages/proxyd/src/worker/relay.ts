// Relay bytes both ways between two sockets, with back-pressure (the faster side pauses while the other
// drains) and half-close (one side's FIN becomes the other side's FIN; the other direction keeps flowing).
//
// Written out rather than a.pipe(b) / stream.pipeline(): a tunnel is mostly idle, and pipe() keeps nine
// closures and its own state per direction for its whole life. Three listeners per direction do the same
// job here (measured with heap snapshots over 2,000 idle tunnels, issue 7), and show the mechanism.
// The listeners are shared functions (an EventEmitter calls them with the socket as `this`), and each
// socket's other end is found in one Map: a closure per listener and direction cost a tunnel eight
// closures and three contexts, ~700 bytes kept for its life (heap snapshots, issue 20).
import type net from 'node:net';
import { forwardsItsReads } from './pooled-reads.ts';

/** The other end of every socket relayed now, and the pair's count of sockets still open. */
interface End {
  peer: net.Socket;
  pair: { open: number; onDone: () => void };
}
const ends = new Map<net.Socket, End>();

/** Relay a ↔ b; `onDone` runs once, when both sockets have closed. */
export function relay(a: net.Socket, b: net.Socket, onDone: () => void): void {
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  const pair = { open: 2, onDone };
  ends.set(a, { peer: b, pair });
  ends.set(b, { peer: a, pair });
  forward(a, b);
  forward(b, a);
  a.on('error', destroyBoth);
  b.on('error', destroyBoth);
  a.on('close', onClose);
  b.on('close', onClose);
}

/** One direction: what `from` reads, `to` writes; `from` waits while `to` is full; FIN follows the data. */
function forward(from: net.Socket, to: net.Socket): void {
  if (!forwardsItsReads(from)) from.on('data', onData);
  // else a socket dialled by connectForwardingTo() writes its reads to `to` itself (pooled-reads.ts)
  to.on('drain', onDrain);
  // A client that closed while it waited for a permit has sent its FIN before the tunnel exists: its
  // 'end' is already past, so pass the FIN on now (else the tunnel, and its permit, wait for the idle timeout).
  if (from.readableEnded) to.end();
  else from.on('end', onEnd);
}

function onData(this: net.Socket, chunk: Buffer): void {
  const end = ends.get(this);
  if (end && !end.peer.write(chunk)) this.pause(); // the peer's buffer is over its high-water mark
}

/** This socket's buffer drained: its peer may read again. */
function onDrain(this: net.Socket): void {
  ends.get(this)?.peer.resume();
}

function onEnd(this: net.Socket): void {
  ends.get(this)?.peer.end();
}

/** An error on either side ends both: a tunnel with one dead end is no tunnel. */
function destroyBoth(this: net.Socket): void {
  const end = ends.get(this);
  this.destroy();
  end?.peer.destroy();
}

function onClose(this: net.Socket): void {
  const end = ends.get(this);
  if (!end) return;
  ends.delete(this);
  end.peer.destroySoon(); // what the peer still has to write goes out first
  if (--end.pair.open === 0) end.pair.onDone();
}
