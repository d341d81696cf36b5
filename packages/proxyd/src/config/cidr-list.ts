// Lists of IP ranges ("10.0.0.0/8", "fd00::/8", or a bare address), as --allow-client and --allow-dest
// take them. The policy builds its net.BlockList from the same text (policy/address-rules.ts: addCidr).
import net from 'node:net';
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
 * A list of ranges; with `anyAllowed`, the word "any" (any case) is an entry too; with `noneAllowed`, the
 * word "none" (an empty list that still overrides a default: the consumer skips the word).
 */
export function cidrListType({ anyAllowed = false, noneAllowed = false } = {}): OptionType<string[]> {
  return listType((entry) => ((anyAllowed && entry.toLowerCase() === 'any') || (noneAllowed && entry.toLowerCase() === 'none') ? { ok: true, value: entry } : parseCidr(entry)));
}
