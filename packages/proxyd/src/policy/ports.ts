// Which ports a request may reach: CONNECT only to --connect-ports, plain HTTP never to
// --blocked-http-ports. A pure decision over the port lists that config/port-list.ts parses.
import type { PortList } from '../config/port-list.ts';

export function portAllowed(list: PortList, port: number): boolean {
  for (const [from, to] of list) if (port >= from && port <= to) return true;
  return false;
}
