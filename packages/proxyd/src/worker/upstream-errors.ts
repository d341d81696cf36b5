// Socket and DNS errors from the upstream side, mapped to an answer (one table, as proxy-chain does).
import type net from 'node:net';
import type { RefusalCode } from '../policy/refusals.ts';

const KINDS: Record<string, { refusal: RefusalCode; what: string }> = {
  ECONNREFUSED: { refusal: 'UPSTREAM_UNREACHABLE', what: 'connection refused' },
  ECONNRESET: { refusal: 'UPSTREAM_UNREACHABLE', what: 'connection reset by the destination' },
  ENOTFOUND: { refusal: 'UPSTREAM_UNREACHABLE', what: 'name does not resolve' },
  EAI_AGAIN: { refusal: 'UPSTREAM_UNREACHABLE', what: 'name lookup failed temporarily' },
  EHOSTUNREACH: { refusal: 'UPSTREAM_UNREACHABLE', what: 'host unreachable' },
  ENETUNREACH: { refusal: 'UPSTREAM_UNREACHABLE', what: 'network unreachable' },
  EPIPE: { refusal: 'UPSTREAM_UNREACHABLE', what: 'connection closed by the destination' },
  ETIMEDOUT: { refusal: 'UPSTREAM_TIMEOUT', what: 'timed out' },
  UPSTREAM_TIMEOUT: { refusal: 'UPSTREAM_TIMEOUT', what: 'no answer within the upstream timeout' },
};

// undici (the upstream pool) names some of the same failures its own way; log and count them as one.
const UNDICI_ALIASES: Record<string, string> = {
  UND_ERR_SOCKET: 'ECONNRESET', // "other side closed" mid-exchange
  UND_ERR_CONNECT_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'UPSTREAM_TIMEOUT',
};

export function classifyUpstreamError(err: NodeJS.ErrnoException): { refusal: RefusalCode; kind: string; what: string } {
  const code = err.code ?? 'ERROR';
  const kind = UNDICI_ALIASES[code] ?? code;
  const known = KINDS[kind];
  return known ? { ...known, kind } : { refusal: 'UPSTREAM_UNREACHABLE', kind, what: err.message };
}

/** Destroy a socket still dialling after `ms` with an upstream timeout (its 'error' then says so). */
export function failUnlessConnectedWithin(socket: net.Socket, ms: number): void {
  const timer = setTimeout(() => socket.destroy(upstreamTimeoutError()), ms);
  const done = (): void => clearTimeout(timer);
  socket.once('connect', done);
  socket.once('close', done);
}

/** An error that marks an upstream timeout. */
export function upstreamTimeoutError(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error('upstream timeout');
  err.code = 'UPSTREAM_TIMEOUT';
  return err;
}
