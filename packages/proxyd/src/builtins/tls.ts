/**
 * node:tls, loaded when first needed: by a TLS listener (--tls-cert), an https:// parent, or the check of
 * a certificate pair at start. Loading it sets up OpenSSL's TLS side and node's TLS modules in the
 * thread that loads it, which a proxy that speaks no TLS itself does not need: every forwarded HTTPS
 * request is a CONNECT tunnel of bytes (issue 20: 4-6 MiB of a fresh proxyd's RSS,
 * where the primary and both workers loaded it).
 */
import { createRequire } from 'node:module';

type NodeTls = typeof import('node:tls');
let loaded: NodeTls | undefined;

export function nodeTls(): NodeTls {
  loaded ??= createRequire(import.meta.url)('node:tls') as NodeTls;
  return loaded;
}
