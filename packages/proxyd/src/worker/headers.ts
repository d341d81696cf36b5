// Which headers a proxy must not pass on (RFC 9110 §7.6.1): the hop-by-hop ones, plus every header the
// Connection header names, plus the proxy's own credentials. Works on Node's rawHeaders
// ([name, value, name, value, …]) so that the names' case and order reach the other side unchanged.

const ALWAYS_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding', // Node decodes the body; it re-frames it (chunked or length) on the other side
  'upgrade',
  'expect', // proxyd answers 100-continue itself
]);

/** rawHeaders without hop-by-hop headers; `keep` names ones to pass anyway (e.g. upgrade, connection). */
export function endToEndHeaders(raw: readonly string[], keep: ReadonlySet<string> = new Set()): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') {
      for (const token of raw[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if ((ALWAYS_HOP_BY_HOP.has(name) || named.has(name)) && !keep.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Append our Via entry (a header list may already carry other proxies' entries). */
export function withVia(headers: string[], token: string): string[] {
  const entry = `1.1 ${token}`;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === 'via') {
      headers[i + 1] = `${headers[i + 1]}, ${entry}`;
      return headers;
    }
  }
  headers.push('Via', entry);
  return headers;
}

/** Replace (or add) the Host header with the URL's authority. */
export function withHost(headers: string[], host: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() !== 'host') out.push(headers[i]!, headers[i + 1]!);
  out.unshift('Host', host);
  return out;
}
