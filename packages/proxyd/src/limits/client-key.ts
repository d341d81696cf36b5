// Who "a client" is for limits and bans: its IPv4 address, or its IPv6 network of --ipv6-prefix bits
// (one host usually owns a whole /64 and can pick any address in it, so a per-address limit would be
// no limit); an IPv4-mapped IPv6 address (::ffff:192.0.2.1, from a listener on ::) is its IPv4 address.
// With proxy authentication the user has a key of its own, "user:NAME", beside the address's.
import net from 'node:net';

export function clientKey(address: string, ipv6Prefix: number): string {
  if (net.isIPv4(address)) return address;
  if (!net.isIPv6(address)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (ipv6Prefix >= 128) return address.toLowerCase();
  const words = ipv6Words(address);
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, ipv6Prefix - i * 16));
    words[i] = keep === 0 ? 0 : words[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  return `${compressIpv6(words)}/${ipv6Prefix}`;
}

export function userKey(user: string): string {
  return `user:${user}`;
}

/** The eight 16-bit words of a valid IPv6 address (with "::" expanded; a trailing dotted quad read). */
function ipv6Words(address: string): number[] {
  let text = address.split('%')[0]!;
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((w) => parseInt(w, 16));
}

/** RFC 5952 text: lower case, the longest run of two or more zero words as "::". */
function compressIpv6(words: number[]): string {
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestAt = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLength).join(':')}`;
}
