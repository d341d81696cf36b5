// Which headers a proxy must not pass on (RFC 9110 §7.6.1): the hop-by-hop ones, plus every header the
// Connection header names, plus the proxy's own credentials. Works on raw header lists
// ([name, value, name, value, …], as Node's rawHeaders) so that the names' case and order reach the other
// side unchanged, and without building Node's req.headers object or a Set per message (a Set only when a
// Connection header names more): this runs twice for every request forwarded, and both showed up in
// the allocation profile (issue 7).

const ALWAYS_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding', // the body is decoded here and re-framed (chunked or length) on the other side
  'upgrade',
  'expect', // proxyd answers 100-continue itself
]);

const NOTHING: ReadonlySet<string> = new Set();

export interface ForwardOptions {
  /** Our Via entry's token ("1.1 <token>" is appended to any Via already there). */
  viaToken: string;
  /** Set Host to this (replacing any Host header), first in the list; undefined: leave Host alone. */
  host?: string;
  /** Hop-by-hop headers to pass anyway (an Upgrade request's upgrade/connection). */
  keep?: ReadonlySet<string>;
}

/** The headers to send on: end-to-end ones only, our Via added, Host set when asked. */
export function forwardedHeaders(raw: readonly string[], { viaToken, host, keep = NOTHING }: ForwardOptions): string[] {
  const named = connectionNamed(raw);
  const out: string[] = host === undefined ? [] : ['Host', host];
  // Several Via lines are one list in the order of the proxies (RFC 9110 §7.6.3): our entry joins the
  // last one, so it ends the list.
  let lastVia = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if ((ALWAYS_HOP_BY_HOP.has(lower) || named?.has(lower)) && !keep.has(lower)) continue;
    if (host !== undefined && lower === 'host') continue;
    if (lower === 'via') lastVia = out.length + 1;
    out.push(name, raw[i + 1]!);
  }
  if (lastVia < 0) out.push('Via', `1.1 ${viaToken}`);
  else out[lastVia] = `${out[lastVia]}, 1.1 ${viaToken}`;
  return out;
}

/** Header names listed in Connection headers (lower case), or undefined when there is none. */
function connectionNamed(raw: readonly string[]): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (!isHeader(raw[i]!, 'connection')) continue;
    named ??= new Set();
    for (const token of raw[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
  }
  return named;
}

/** Every value of header `lowerName` joined by ", " (as Node does for req.headers), or undefined. */
export function rawHeaderValue(raw: readonly string[], lowerName: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (!isHeader(raw[i]!, lowerName)) continue;
    value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]}`;
  }
  return value;
}

/** Is `name` the header `lowerName`, in any case? (The length test spares most lowercasing.) */
function isHeader(name: string, lowerName: string): boolean {
  return name.length === lowerName.length && name.toLowerCase() === lowerName;
}
