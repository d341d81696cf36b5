// Where the proxy may connect, judged on the address it will actually dial (after DNS). Never link-local
// (cloud metadata lives there), never the metadata endpoints, never "this host" / multicast, never the
// proxy's own listening port on this machine (a loop); loopback only when --allow-dest names it.
import net from 'node:net';
import { addCidr, CLOUD_METADATA, inList, LINK_LOCAL, LOOPBACK, MULTICAST_BROADCAST, rule, UNSPECIFIED, type AddressRule } from './address-rules.ts';

export interface DestinationPolicy {
  /** The rule that forbids dialling address:port, or undefined when it is allowed. */
  check(address: string, port: number): string | undefined;
}

export interface DestinationOptions {
  /** --allow-dest ranges (e.g. 127.0.0.0/8): lifts the loopback rule for these. */
  allowDest: readonly string[];
  /** Ports the proxy itself listens on. */
  ownPorts: readonly number[];
  /** This machine's own addresses (interfaces), where a connection to an own port is a loop. */
  localAddresses: readonly string[];
}

const ALWAYS_FORBIDDEN: AddressRule[] = [
  rule('cloud-metadata', CLOUD_METADATA),
  rule('link-local', LINK_LOCAL),
  rule('unspecified-address', UNSPECIFIED),
  rule('multicast-or-broadcast', MULTICAST_BROADCAST),
];
const LOOPBACK_RULE = rule('loopback', LOOPBACK);

export function createDestinationPolicy(o: DestinationOptions): DestinationPolicy {
  const allowed = new net.BlockList();
  for (const cidr of o.allowDest) addCidr(allowed, cidr, '--allow-dest');
  const local = new net.BlockList();
  for (const a of o.localAddresses) if (net.isIP(a)) addCidr(local, a);
  for (const cidr of [...LOOPBACK, ...UNSPECIFIED]) addCidr(local, cidr);
  const ownPorts = new Set(o.ownPorts);
  // The verdict on an address, remembered: a keep-alive client sends request after request to the same
  // IP literal, and each verdict is up to eight BlockList lookups. Bounded; a reload makes a new policy.
  const memo = new Map<string, AddressVerdict>();
  const verdictOf = (address: string): AddressVerdict => {
    let verdict = memo.get(address);
    if (verdict === undefined) {
      verdict = judge(address, local, allowed);
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(address, verdict);
    }
    return verdict;
  };
  return {
    check(address, port) {
      const verdict = verdictOf(address);
      if (verdict.rule !== undefined) return verdict.rule;
      if (verdict.local && ownPorts.has(port)) return 'proxy-itself';
      return verdict.loopbackRule;
    },
  };
}

const MEMO_LIMIT = 4096;

interface AddressVerdict {
  /** A rule that forbids the address on any port. */
  rule: string | undefined;
  /** The address is this machine (a connection to one of our own ports would be a loop). */
  local: boolean;
  /** Loopback not lifted by --allow-dest (checked after the own-port rule, which names the loop). */
  loopbackRule: string | undefined;
}

function judge(address: string, local: net.BlockList, allowed: net.BlockList): AddressVerdict {
  if (net.isIP(address) === 0) return { rule: 'not-an-address', local: false, loopbackRule: undefined };
  for (const r of ALWAYS_FORBIDDEN) if (inList(r.list, address)) return { rule: r.name, local: false, loopbackRule: undefined };
  // The advice names a range of the address's own family: 127.0.0.0/8 does not lift ::1.
  const lift = net.isIP(address) === 6 ? `${address}/128` : '127.0.0.0/8';
  const loopbackRule = inList(LOOPBACK_RULE.list, address) && !inList(allowed, address) ? `loopback (allow with --allow-dest ${lift})` : undefined;
  return { rule: undefined, local: inList(local, address), loopbackRule };
}
