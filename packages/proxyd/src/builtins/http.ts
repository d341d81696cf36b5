/**
 * node:http, loaded with require() rather than import. An ES-module import of a Node.js builtin builds its
 * namespace from every export, getters included, and node:http's WebSocket, CloseEvent and MessageEvent
 * getters load the copy of undici bundled in Node.js (for its WebSocket client), and node:tls with it: in a
 * bare Node.js 14 MiB of RSS against 4 for require(), 2.5 MiB of it heap; 4-5 MiB of a fresh proxyd,
 * whose primary and workers all imported it, for classes proxyd never uses (issue 20).
 * require() returns the exports object and leaves its getters alone until something reads them.
 */
import { createRequire } from 'node:module';
import type * as NodeHttp from 'node:http';

const http: typeof NodeHttp = createRequire(import.meta.url)('node:http');

/** The classes' types under the same name, so that `http.IncomingMessage` reads as it does with node:http. */
declare namespace http {
  type Agent = NodeHttp.Agent;
  type IncomingMessage = NodeHttp.IncomingMessage;
  type Server = NodeHttp.Server;
  type ServerResponse = NodeHttp.ServerResponse;
}

export default http;
export const { STATUS_CODES } = http;
