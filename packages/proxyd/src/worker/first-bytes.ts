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
 * A client that stays silent is handed over unseen after FIRST_BYTES_MS (up to SWEEP_MS later), so that
 * the parser's headers timeout and the idle-connection bookkeeping (idle-connections.ts) govern it as
 * before.
 *
 * Every connection passes here, so it is made cheap (issue 20, CONNECT setups): the listeners are shared
 * functions (an EventEmitter calls them with the socket as `this`) and a connection's state is one entry
 * in a Map, not five closures, three once-wrappers and a timer per connection; one interval, running
 * only while some connection waits, hands the silent ones over. Nothing of this stays with a
 * connection once its first bytes have come (a tunnel may last hours).
 */
import type http from 'node:http';
import type net from 'node:net';

const FIRST_BYTES_MS = 1000;
/** How often the silent connections are looked for. */
const SWEEP_MS = 250;

/** "GET /" ended by a line break: a request line with a method and a target and no HTTP version. */
export function isVersionlessRequestLine(first: Buffer): boolean {
  const lf = first.indexOf(0x0a);
  if (lf < 0) return false; // the line is not complete in the first chunk: the parser judges it
  const end = lf > 0 && first[lf - 1] === 0x0d ? lf - 1 : lf;
  return /^[A-Za-z]+ [^\s]+$/.test(first.toString('latin1', 0, end));
}

interface Waiting {
  server: http.Server;
  refuse: (socket: net.Socket) => void;
  direct: ((socket: net.Socket, first: Buffer) => boolean) | undefined;
  /** performance.now() when it started waiting. */
  since: number;
}

/** This thread's connections whose first bytes have not come yet. */
const waiting = new Map<net.Socket, Waiting>();
let sweeper: NodeJS.Timeout | undefined;

/**
 * Hand `socket` to `server`'s parser, unless its first line has no version: then `refuse(socket)`; or
 * unless `direct(socket, first)` takes the connection itself (returns true), given the first chunk.
 */
export function handToParser(server: http.Server, socket: net.Socket, refuse: (socket: net.Socket) => void, direct?: (socket: net.Socket, first: Buffer) => boolean): void {
  waiting.set(socket, { server, refuse, direct, since: performance.now() });
  sweeper ??= setInterval(sweep, SWEEP_MS).unref();
  socket.on('error', ignore); // until the parser's own handler is in place (a reset must not end the thread)
  socket.on('data', onFirst);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.resume();
}

/** Connections of this thread still waiting for their first bytes (for tests and the curious). */
export function waitingForFirstBytes(): number {
  return waiting.size;
}

/** The first bytes came, or the wait ended: this socket is no longer watched here. */
function settle(socket: net.Socket): Waiting | undefined {
  const w = waiting.get(socket);
  if (!w) return undefined;
  waiting.delete(socket);
  socket.off('data', onFirst);
  socket.off('end', onEnd);
  socket.off('close', onClose);
  return w;
}

function onFirst(this: net.Socket, first: Buffer): void {
  const w = settle(this);
  if (!w) return;
  if (isVersionlessRequestLine(first)) return w.refuse(this);
  if (w.direct) {
    this.off('error', ignore);
    // Not flowing, not paused: what arrives meanwhile is buffered, and the first 'data' listener (the
    // relay's) starts the flow again, as after http.Server's 'connect' event.
    (this as { readableFlowing: boolean | null }).readableFlowing = null;
    if (w.direct(this, first)) return;
  }
  handOver(this, w.server, first); // declined: the parser gets the same bytes
}

/** A client that connects and closes without a byte: nothing to answer. */
function onEnd(this: net.Socket): void {
  settle(this);
  this.destroy();
}

function onClose(this: net.Socket): void {
  settle(this);
}

function handOver(socket: net.Socket, server: http.Server, first?: Buffer): void {
  socket.off('error', ignore); // a no-op when the direct path took it off already
  socket.pause();
  server.emit('connection', socket);
  if (first) socket.unshift(first); // read by the parser before anything that arrives later
  socket.resume();
}

/** Silent for FIRST_BYTES_MS: to the parser unseen. The interval stops when nobody waits. */
function sweep(): void {
  const before = performance.now() - FIRST_BYTES_MS;
  for (const [socket, w] of waiting) {
    if (w.since > before) break; // the Map keeps insertion order: the rest came later
    settle(socket);
    handOver(socket, w.server);
  }
  if (waiting.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function ignore(): void {}
