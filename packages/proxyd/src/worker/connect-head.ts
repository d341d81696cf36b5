/**
 * A connection whose first chunk holds a whole CONNECT request head goes straight to its tunnel, without
 * this thread's http.Server. The head is parsed by the same parser http.Server uses — llhttp, through
 * Node's own HTTPParser, from the same pool (`parsers`), with the same callbacks and the same lenience
 * (none) and header-size limit — and gives a real http.IncomingMessage, as the server's 'connect' event
 * would. What is skipped is the server's per-connection setup, which a connection that only ever says
 * CONNECT uses for one request and then tears down: about twenty listeners added and removed, a parser
 * consuming and unconsuming the socket, its connection tracking, the idle-connection bookkeeping
 * (the issue 20 profile: ~9% of a worker's CPU per CONNECT setup).
 *
 * Anything else is declined, and http.Server gets the socket and the same bytes as before: another
 * method, a head not complete in the first chunk (the server's headers timeout then governs it), a parse
 * error of any kind (the server parses it again and answers 400/431 as it always has), or a Node.js whose
 * internals do not look as expected.
 */
import http from '../builtins/http.ts';
import { createRequire } from 'node:module';
import type net from 'node:net';

/** The parts of Node's internal `_http_common` used here (undocumented; checked at load, see usable). */
interface HttpCommon {
  HTTPParser: { new (): Parser; REQUEST: number };
  parsers: { alloc(): Parser };
  freeParser(parser: Parser, req: http.IncomingMessage | null, socket: net.Socket | null): void;
  calculateLenientFlags(httpValidation: undefined, insecure: undefined): number;
}
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | Error;
  socket: net.Socket | null;
  incoming: http.IncomingMessage | null;
  onIncoming: ((req: http.IncomingMessage, keepAlive: boolean) => number) | null;
}

const common = loadCommon();

function loadCommon(): HttpCommon | undefined {
  try {
    const c = createRequire(import.meta.url)('_http_common') as Partial<HttpCommon>;
    const usable = typeof c.HTTPParser === 'function' && typeof c.parsers?.alloc === 'function' && typeof c.freeParser === 'function' && typeof c.calculateLenientFlags === 'function';
    return usable ? (c as HttpCommon) : undefined;
  } catch {
    return undefined;
  }
}

/** The lenience http.Server gives its parser when neither httpValidation nor insecureHTTPParser is set. */
const LENIENT_FLAGS = common?.calculateLenientFlags(undefined, undefined) ?? 0;
/** "CONNECT " */
const CONNECT_ = Buffer.from('CONNECT ', 'latin1');

/** Whether `first` starts with "CONNECT ": byte by byte (Buffer#compare with ranges cost ~400 bytes of garbage a call). */
function startsWithConnect(first: Buffer): boolean {
  if (first.length < CONNECT_.length) return false;
  for (let i = 0; i < CONNECT_.length; i++) if (first[i] !== CONNECT_[i]) return false;
  return true;
}

/** What parserOnIncoming answers llhttp for a CONNECT: the message ends at its head (an upgrade). */
const UPGRADE = 2;
function onIncoming(): number {
  return UPGRADE;
}

export interface ConnectHead {
  req: http.IncomingMessage;
  /** Bytes after the head in the same chunk (the tunnel's first bytes upstream). */
  head: Buffer;
}

/** The CONNECT request `first` holds, parsed as http.Server would; undefined to leave it to the server. */
export function parseConnectHead(socket: net.Socket, first: Buffer, maxHeaderSize: number): ConnectHead | undefined {
  if (!common || !startsWithConnect(first)) return undefined;
  const parser = common.parsers.alloc();
  parser.initialize(common.HTTPParser.REQUEST, { type: 'HTTPINCOMINGMESSAGE', socket }, maxHeaderSize, LENIENT_FLAGS);
  parser.socket = socket;
  parser.onIncoming = onIncoming;
  const ret = parser.execute(first);
  const req = parser.incoming;
  const ok = typeof ret === 'number' && req !== null && (req as { upgrade?: boolean }).upgrade === true && req.method === 'CONNECT';
  // No socket here: freeParser would add socket.parser = null, a property this socket never had, for
  // the tunnel's life (the parser was never the socket's: parser.socket points the other way, and
  // freeParser clears that).
  common.freeParser(parser, req, null);
  if (!ok) return undefined;
  return { req: req!, head: first.subarray(ret as number) };
}
