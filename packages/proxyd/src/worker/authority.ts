// "host:port" of a CONNECT request, with IPv6 in brackets ("[::1]:443"). A port is required.
export function parseAuthority(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/?#@[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * Split an absolute-form http:// request target ("http://host:port/path?query") into its authority and
 * its origin-form ("/path?query"), the latter byte for byte as the client wrote it: a proxy must not
 * re-encode a target (WHATWG URL turns ' into %27, and a signed URL breaks when one byte changes).
 * No path means "/"; a fragment, which clients should not send, is dropped. The caller has checked the
 * scheme; the authority is what a URL parser must agree on (see forward-http.ts).
 */
export function splitAbsoluteTarget(target: string): { authority: string; originForm: string } {
  const SCHEME = 'http://'.length;
  let end = SCHEME;
  while (end < target.length && target[end] !== '/' && target[end] !== '?' && target[end] !== '#') end++;
  const hash = target.indexOf('#', end);
  const rest = hash < 0 ? target.slice(end) : target.slice(end, hash);
  return { authority: target.slice(SCHEME, end), originForm: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}
