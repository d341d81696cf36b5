// A refusal the primary answers itself, on a socket it has accepted but never read (queue full or too
// slow: 503; over a per-client connection limit: 429): the whole response in one write, with
// Retry-After, then close.
import type net from 'node:net';
import { rawRefusal, type RefusalCode } from '../policy/refusals.ts';

export function refuseAtAccept(socket: net.Socket, code: RefusalCode, detail: string, retryAfterMs: number): void {
  const retryAfter = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  socket.resume(); // read and discard what the client sent, so closing does not reset the connection
  socket.end(rawRefusal(code, detail, { 'Retry-After': retryAfter }));
  setTimeout(() => socket.destroy(), 2000).unref();
}
