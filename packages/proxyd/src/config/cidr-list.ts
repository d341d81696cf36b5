// Lists of IP ranges ("10.0.0.0/8", "fd00::/8", or a bare address), as --allow-client and --allow-dest
// take them. The policy builds its net.BlockList from the same text (policy/address-rules.ts: addCidr).
import net from 'node:net';
import { addCidr, inList, LOOPBACK } from '../policy/address-rules.ts';
import { listType, type OptionType, type Parsed } from './option-type.ts';

/** Check one range; the text is kept as written. */
export function parseCidr(text: string): Parsed<string> {
  const [address, bits, extra] = text.trim().split('/');
  const family = net.isIP(address ?? '');
  if (!address || family === 0 || extra !== undefined) return { ok: false, value: text, problem: 'is not an IP address or CIDR range' };
  if (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))) return { ok: false, value: text, problem: 'has a bad prefix length' };
  return { ok: true, value: text };
}

/**
 * A range that shares addresses with loopback (127.0.0.0/8, ::1): it contains a loopback address, or
 * its own address is one. --allow-dest opens only loopback, so any other range there would do nothing.
 */
function parseLoopbackCidr(text: string): Parsed<string> {
  const parsed = parseCidr(text);
  if (!parsed.ok) return parsed;
  const range = new net.BlockList();
  addCidr(range, text.trim());
  const address = text.trim().split('/')[0]!;
  const overlaps = inList(range, '127.0.0.0') || inList(range, '::1') || LOOPBACK.some((cidr) => {
    const loopback = new net.BlockList();
    addCidr(loopback, cidr);
    return inList(loopback, address);
  });
  if (overlaps) return parsed;
  return { ok: false, value: text, problem: 'is not a loopback range: only loopback needs opening (public and private addresses are open already; link-local and cloud metadata never are)' };
}

/**
 * A list of ranges; with `anyAllowed`, the word "any" (any case) is an entry too; with `noneAllowed`, the
 * word "none" (an empty list that still overrides a default: the consumer skips the word).
 */
export function cidrListType({ anyAllowed = false, noneAllowed = false, loopbackOnly = false } = {}): OptionType<string[]> {
  const parseEntry = loopbackOnly ? parseLoopbackCidr : parseCidr;
  return listType((entry) => ((anyAllowed && entry.toLowerCase() === 'any') || (noneAllowed && entry.toLowerCase() === 'none') ? { ok: true, value: entry } : parseEntry(entry)));
}
