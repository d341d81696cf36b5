/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2): what a TCP load balancer — HAProxy with
 * `send-proxy` / `send-proxy-v2`, an AWS NLB target group with "proxy protocol v2" — writes at the start
 * of each connection it opens to us, before the client's own bytes, to say who the client really is.
 *
 *   v1 (text, at most 107 bytes):   PROXY TCP4 203.0.113.7 10.0.0.5 56324 8080\r\n
 *                                   PROXY TCP6 2001:db8::7 2001:db8::5 56324 8080\r\n
 *                                   PROXY UNKNOWN …\r\n              (use the connection's own addresses)
 *   v2 (binary):  12-byte signature \r\n\r\n\0\r\nQUIT\n
 *                 1 byte  version 2 (high nibble) | command: 0 LOCAL (a health check), 1 PROXY
 *                 1 byte  family: 1 IPv4, 2 IPv6, 0 unspecified, 3 unix (high) | transport: 1 stream (low)
 *                 2 bytes length of the rest, big-endian
 *                 addresses: IPv4 4+4 bytes, ports 2+2; IPv6 16+16, ports 2+2
 *                 then TLVs (type 1 byte, length 2 bytes, value) — an NLB adds its VPC endpoint id; we
 *                 check that each one fits and skip it.
 *
 * This reader is written here because no kept Node.js library does it (proxy-protocol-js was last
 * changed in 2022); it is small, fully specified, and fuzzed by the tests. It is pure: bytes in, a verdict
 * out. It never reads past the header, so the bytes after it are the client's, untouched.
 */
import net from 'node:net';

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's bound for a v1 line, CRLF included. */
export const V1_MAX = 107;
/** Our bound for a v2 header: the addresses plus TLVs a balancer sends fit easily (an NLB's are ~60 bytes). */
export const V2_MAX = 16 + 2048;

export type ProxyHeader =
  /** More bytes are needed to decide. */
  | { kind: 'incomplete' }
  /** Not a PROXY header, or a broken one: the connection is refused. */
  | { kind: 'invalid'; why: string }
  /** `length` bytes of header; `source` is the real client, or undefined to keep the connection's own (LOCAL, UNKNOWN). */
  | { kind: 'header'; version: 1 | 2; length: number; source: { address: string; port: number } | undefined };

/** Read a PROXY header from the first bytes of a connection. */
export function parseProxyHeader(data: Buffer): ProxyHeader {
  if (data.length === 0) return { kind: 'incomplete' };
  if (data[0] === V2_SIGNATURE[0]) return parseV2(data);
  if (data[0] === V1_PREFIX[0]) return parseV1(data);
  return { kind: 'invalid', why: 'no PROXY header' };
}

/** True while `data` is a prefix of `expected` (or starts with all of it). */
function matchesPrefix(data: Buffer, expected: Buffer): boolean {
  const n = Math.min(data.length, expected.length);
  return data.subarray(0, n).equals(expected.subarray(0, n));
}

function parseV1(data: Buffer): ProxyHeader {
  if (!matchesPrefix(data, V1_PREFIX)) return { kind: 'invalid', why: 'no PROXY header' };
  const lf = data.indexOf(0x0a);
  if (lf < 0) return data.length >= V1_MAX ? { kind: 'invalid', why: `v1 line longer than ${V1_MAX} bytes` } : { kind: 'incomplete' };
  if (lf + 1 > V1_MAX) return { kind: 'invalid', why: `v1 line longer than ${V1_MAX} bytes` };
  if (data[lf - 1] !== 0x0d) return { kind: 'invalid', why: 'v1 line does not end in CRLF' };
  const line = data.toString('latin1', 0, lf - 1);
  const fields = line.split(' ');
  const length = lf + 1;
  if (fields[1] === 'UNKNOWN') return { kind: 'header', version: 1, length, source: undefined };
  if (fields.length !== 6) return { kind: 'invalid', why: 'v1 line does not have six fields' };
  const [, family, source, destination, sourcePort, destinationPort] = fields as [string, string, string, string, string, string];
  const want = family === 'TCP4' ? 4 : family === 'TCP6' ? 6 : 0;
  if (!want) return { kind: 'invalid', why: `v1 protocol ${JSON.stringify(family.slice(0, 16))} is not TCP4, TCP6 or UNKNOWN` };
  if (net.isIP(source) !== want || net.isIP(destination) !== want) return { kind: 'invalid', why: `v1 addresses are not ${family}` };
  const port = v1Port(sourcePort);
  if (port === undefined || v1Port(destinationPort) === undefined) return { kind: 'invalid', why: 'v1 port is not a number from 0 to 65535' };
  return { kind: 'header', version: 1, length, source: { address: source, port } };
}

/** A v1 port: decimal digits, no sign, no leading zero, at most 65535. */
function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV2(data: Buffer): ProxyHeader {
  if (!matchesPrefix(data, V2_SIGNATURE)) return { kind: 'invalid', why: 'no PROXY header' };
  if (data.length < 16) return { kind: 'incomplete' };
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return { kind: 'invalid', why: `v2 version ${versionCommand >> 4}` };
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: 'invalid', why: `v2 command ${command}` };
  const family = data[13]! >> 4;
  const transport = data[13]! & 0x0f;
  const rest = data.readUInt16BE(14);
  const length = 16 + rest;
  if (length > V2_MAX) return { kind: 'invalid', why: `v2 header of ${length} bytes (at most ${V2_MAX})` };
  if (data.length < length) return { kind: 'incomplete' };
  // LOCAL: the balancer speaking for itself (a health check); its addresses, if any, are ignored.
  if (command === 0) return { kind: 'header', version: 2, length, source: undefined };
  const addressBytes = family === 1 ? 12 : family === 2 ? 36 : family === 0 ? 0 : -1;
  if (addressBytes < 0) return { kind: 'invalid', why: `v2 address family ${family} (unix sockets are not served)` };
  if (family !== 0 && transport !== 1) return { kind: 'invalid', why: `v2 transport ${transport} is not a TCP stream` };
  if (rest < addressBytes) return { kind: 'invalid', why: `v2 address block of ${rest} bytes is too short` };
  const tlvError = checkTlvs(data.subarray(16 + addressBytes, length));
  if (tlvError) return { kind: 'invalid', why: tlvError };
  if (family === 0) return { kind: 'header', version: 2, length, source: undefined }; // UNSPEC: keep our own
  const body = data.subarray(16);
  if (family === 1) return { kind: 'header', version: 2, length, source: { address: `${body[0]}.${body[1]}.${body[2]}.${body[3]}`, port: body.readUInt16BE(8) } };
  return { kind: 'header', version: 2, length, source: { address: ipv6(body.subarray(0, 16)), port: body.readUInt16BE(32) } };
}

/** Each TLV must fit in what is left: type (1), length (2), value. Their contents are not used. */
function checkTlvs(tlvs: Buffer): string | undefined {
  let at = 0;
  while (at < tlvs.length) {
    if (at + 3 > tlvs.length) return 'v2 TLV header cut short';
    const size = tlvs.readUInt16BE(at + 1);
    if (at + 3 + size > tlvs.length) return 'v2 TLV runs past the header';
    at += 3 + size;
  }
  return undefined;
}

/** 16 bytes → the canonical text form (compressed, lowercase; IPv4-mapped as ::ffff:a.b.c.d). */
function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  const text = groups.join(':');
  // Let the platform's own parser pick the canonical form: SocketAddress normalises what it is given.
  return new net.SocketAddress({ address: text, family: 'ipv6' }).address;
}
