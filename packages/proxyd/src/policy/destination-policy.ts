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
  return {
    check(address, port) {
      if (net.isIP(address) === 0) return 'not-an-address';
      for (const r of ALWAYS_FORBIDDEN) if (inList(r.list, address)) return r.name;
      if (ownPorts.has(port) && inList(local, address)) return 'proxy-itself';
      if (inList(LOOPBACK_RULE.list, address) && !inList(allowed, address)) return 'loopback (allow with --allow-dest 127.0.0.0/8)';
      return undefined;
    },
  };
}
