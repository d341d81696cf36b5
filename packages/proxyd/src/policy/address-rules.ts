// Named sets of IP ranges over net.BlockList. BlockList matches an address in any spelling once it is an
// address: IPv4-mapped IPv6 (::ffff:169.254.169.254, ::ffff:a9fe:a9fe) matches the IPv4 rule, and
// IPv6 is compared as numbers, not text. Decimal, octal and hex IPv4 spellings (2852039166,
// 0251.0376.0251.0376) are not addresses to BlockList: the caller resolves them first (dns.lookup turns
// them into dotted quads), and checks the address it will actually dial.
import net from 'node:net';

export interface AddressRule {
  name: string;
  list: net.BlockList;
}

/** Parse "10.0.0.0/8", "fd00::/8" or a bare address; throws a one-line error. */
export function addCidr(list: net.BlockList, cidr: string, what = 'address range'): void {
  const [address, bits, extra] = cidr.trim().split('/');
  const family = net.isIP(address ?? '');
  if (!address || family === 0 || extra !== undefined) throw new Error(`${what}: "${cidr}" is not an IP address or CIDR range`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) return list.addAddress(address, type);
  const prefix = Number(bits);
  if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) throw new Error(`${what}: "${cidr}" has a bad prefix length`);
  list.addSubnet(address, prefix, type);
}

export function rule(name: string, cidrs: readonly string[]): AddressRule {
  const list = new net.BlockList();
  for (const c of cidrs) addCidr(list, c);
  return { name, list };
}

/** Does `address` (any valid IPv4 or IPv6 text) fall in `list`? */
export function inList(list: net.BlockList, address: string): boolean {
  const family = net.isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export const LOOPBACK = ['127.0.0.0/8', '::1/128'];
const LOOPBACK_RULE = rule('loopback', LOOPBACK);

/** Does a range (a valid CIDR or address) share addresses with loopback: contain one, or start in one? */
export function overlapsLoopback(cidr: string): boolean {
  const range = new net.BlockList();
  addCidr(range, cidr);
  return inList(range, '127.0.0.0') || inList(range, '::1') || inList(LOOPBACK_RULE.list, cidr.trim().split('/')[0]!);
}
export const PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'fe80::/10'];
export const LINK_LOCAL = ['169.254.0.0/16', 'fe80::/10', '64:ff9b::a9fe:0/112'];
export const CLOUD_METADATA = ['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200', '192.0.0.192'];
export const UNSPECIFIED = ['0.0.0.0/8', '::/128'];
export const MULTICAST_BROADCAST = ['224.0.0.0/4', '255.255.255.255', 'ff00::/8'];

/** Is `host` (an address, or the name "localhost") reachable from this machine only? */
export function isLoopbackHost(host: string): boolean {
  return net.isIP(host) !== 0 ? inList(LOOPBACK_RULE.list, host) : host === 'localhost';
}
