// Who may use the proxy. Default: loopback and private ranges (Squid's "localnet"). `--allow-client`
// adds ranges; "any" opens it explicitly; proxy authentication opens it to every address that logs in.
import net from 'node:net';
import { addCidr, inList, LOOPBACK, PRIVATE } from './address-rules.ts';

export interface ClientAcl {
  allows(address: string | undefined): boolean;
  /** One line for the start-up banner: who may connect. */
  describe(): string;
  /** True when addresses outside loopback and private ranges may connect. */
  readonly open: boolean;
}

export function createClientAcl(allowClient: readonly string[], authEnabled: boolean): ClientAcl {
  const any = allowClient.some((c) => c.trim().toLowerCase() === 'any');
  const list = new net.BlockList();
  for (const cidr of [...LOOPBACK, ...PRIVATE]) addCidr(list, cidr);
  const extra = allowClient.filter((c) => c.trim().toLowerCase() !== 'any');
  for (const cidr of extra) addCidr(list, cidr, '--allow-client');
  const openToAll = any || authEnabled;
  return {
    open: openToAll || extra.length > 0,
    allows(address) {
      if (openToAll) return true;
      return address !== undefined && inList(list, address);
    },
    describe() {
      if (any) return 'any address (--allow-client any)' + (authEnabled ? ', with proxy authentication' : ', WITHOUT authentication');
      if (authEnabled) return 'any address that authenticates (--auth-file)';
      return `loopback and private ranges${extra.length ? ` and ${extra.join(', ')}` : ''}`;
    },
  };
}

/** The load balancers of --proxy-protocol-from: true for an address inside one of their ranges. */
export function createBalancerMatcher(cidrs: readonly string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const cidr of cidrs) addCidr(list, cidr, '--proxy-protocol-from');
  return (address) => inList(list, address);
}
