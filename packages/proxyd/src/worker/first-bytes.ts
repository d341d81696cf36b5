/**
 * A fresh connection's first bytes, looked at before Node's HTTP parser takes the socket.
 *
 * Why: llhttp reads a request line without a version ("GET /\r\n", HTTP/0.9 style) as the start of a
 * request whose header lines are still to come, and waits for them — a real HTTP/0.9 client waits too,
 * so the connection hangs with no answer until --headers-timeout. Once the parser has the socket it
 * reads it in C++ (parser.consume), and this thread never sees the bytes. So the first chunk is read
 * here: a version-less request line is answered 400 at once; anything else is put back (unshift) and the
 * socket handed to the parser, which then reads that chunk first and the rest as usual.
 *
 * A client that stays silent is handed over unseen after FIRST_BYTES_MS, so that the parser's headers
 * timeout and the idle-connection bookkeeping (idle-connections.ts) govern it as before.
 */
import type http from 'node:http';
import type net from 'node:net';

const FIRST_BYTES_MS = 1000;

/** "GET /" ended by a line break: a request line with a method and a target and no HTTP version. */
export function isVersionlessRequestLine(first: Buffer): boolean {
  const lf = first.indexOf(0x0a);
  if (lf < 0) return false; // the line is not complete in the first chunk: the parser judges it
  const end = lf > 0 && first[lf - 1] === 0x0d ? lf - 1 : lf;
  return /^[A-Za-z]+ [^\s]+$/.test(first.toString('latin1', 0, end));
}

/**
 * Hand `socket` to `server`'s parser, unless its first line has no version: then `refuse(socket)`; or
 * unless `direct(socket, first)` takes the connection itself (returns true), given the first chunk.
 */
export function handToParser(server: http.Server, socket: net.Socket, refuse: (socket: net.Socket) => void, direct?: (socket: net.Socket, first: Buffer) => boolean): void {
  const handOver = (first?: Buffer): void => {
    settled();
    socket.off('data', onFirst);
    socket.off('end', onEnd);
    socket.off('error', ignore);
    socket.pause();
    server.emit('connection', socket);
    if (first) socket.unshift(first); // read by the parser before anything that arrives later
    socket.resume();
  };
  const onFirst = (first: Buffer): void => {
    if (isVersionlessRequestLine(first)) {
      settled();
      socket.off('end', onEnd);
      return refuse(socket);
    }
    if (direct) {
      settled();
      socket.off('end', onEnd);
      socket.off('error', ignore);
      // Not flowing, not paused: what arrives meanwhile is buffered, and the first 'data' listener (the
      // relay's) starts the flow again, as after http.Server's 'connect' event.
      (socket as { readableFlowing: boolean | null }).readableFlowing = null;
      if (direct(socket, first)) return;
    }
    handOver(first); // declined: the parser gets the same bytes (handOver's off() of what is gone is a no-op)
  };
  // A client that connects and closes without a byte: nothing to answer.
  const onEnd = (): void => {
    settled();
    socket.destroy();
  };
  // The first bytes came (or the wait ended): no timer, and no 'close' listener left behind to hold
  // this function's closures for the connection's life (a tunnel may last hours).
  const settled = (): void => {
    clearTimeout(timer);
    socket.off('close', onClose);
  };
  const onClose = (): void => clearTimeout(timer);
  const timer = setTimeout(handOver, FIRST_BYTES_MS);
  socket.once('close', onClose);
  socket.on('error', ignore); // until the parser's own handler is in place (a reset must not end the thread)
  socket.once('data', onFirst);
  socket.once('end', onEnd);
  socket.resume();
}

function ignore(): void {}
