// Who the proxy serves, in words, and where it must never connect: for the banner, the log and the
// serving threads' loop check.
import net from 'node:net';
import os from 'node:os';
import { inList, LOOPBACK, overlapsLoopback, PRIVATE, rule } from '../policy/address-rules.ts';
import type { ClientAcl } from '../policy/client-acl.ts';
import type { ProxyOptions } from '../config/options.ts';
import { formatPortList } from '../config/port-list.ts';

const LOCAL_RANGES = rule('local', [...LOOPBACK, ...PRIVATE]);

/** This machine's interface addresses: a connection to one of them on our port is a loop. */
export function localAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => typeof a === 'string');
}

/** Set when the proxy listens on a public address yet only local clients may use it. */
export function accessWarning(host: string, acl: ClientAcl): string | undefined {
  const listensPublicly = host === '0.0.0.0' || host === '::' || (net.isIP(host) !== 0 && !inList(LOCAL_RANGES.list, host));
  if (!listensPublicly || acl.open) return undefined;
  return `listening on ${host}, but only loopback and private-range clients may connect: remote clients will be refused. ` +
    'Allow them with --allow-client CIDR (e.g. your address/32), or require a login with --auth-file.';
}

/**
 * Set when --allow-dest names ranges with no loopback address in them: they change nothing (public and
 * private addresses are open already; link-local and cloud metadata never are). A warning, not a
 * refusal: such a config started before, and a service must not stay down after an upgrade for it.
 */
export function allowDestWarning(allowDest: readonly string[]): string | undefined {
  const idle = allowDest.filter((cidr) => !overlapsLoopback(cidr));
  if (idle.length === 0) return undefined;
  return `--allow-dest ${idle.join(', ')}: no loopback address in ${idle.length === 1 ? 'it' : 'them'}, so ${idle.length === 1 ? 'it changes' : 'they change'} nothing. ` +
    '--allow-dest only opens loopback (e.g. 127.0.0.0/8, ::1); public and private addresses are open already, link-local and cloud metadata never are.';
}

/** Where the proxy may connect, in words (for the banner and the 'started' record). */
export function describeDestinations(o: Pick<ProxyOptions, 'allowDest' | 'connectPorts' | 'blockedHttpPorts'>): string {
  const loopback = o.allowDest.length ? `loopback within ${o.allowDest.join(', ')}` : 'no loopback';
  const http = o.blockedHttpPorts.length ? `plain HTTP to any port but ${formatPortList(o.blockedHttpPorts)}` : 'plain HTTP to any port';
  return `public and private addresses, ${loopback}, never link-local or cloud metadata; CONNECT to port${o.connectPorts.length === 1 && o.connectPorts[0]![0] === o.connectPorts[0]![1] ? '' : 's'} ${formatPortList(o.connectPorts)}; ${http}`;
}
