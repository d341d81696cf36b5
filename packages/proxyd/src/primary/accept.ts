// Accept: every connection the listener gives the primary. Refused at once, before a permit or a thread
// is spent and without reading a byte: clients outside the ACL; banned clients (closed, counted, not
// logged: a ban is one log line, not one per knock); clients over --conn-rate or with
// --max-conns-per-client open already (429 and close). The rest wait for a permit (admission.ts) and are
// handed over.
// With --proxy-protocol on, the peers are load balancers: anyone else is refused here, and the client
// ACL and bans wait for the PROXY header, which the serving thread reads (the per-client connection
// limits do not apply: here every connection is the balancer's).
// A client for whom the open-file limit has no room left is refused 503 here too (fd-guard.ts).
import type net from 'node:net';
import { clientKey } from '../limits/client-key.ts';
import { debugLogged } from '../memory/debug-logged.ts';
import { admitNow, admitQueued } from './admission.ts';
import { passFdBudget } from './fd-guard.ts';
import { handOver } from './hand-over.ts';
import type { AcceptedConnection, PrimaryState } from './primary-state.ts';
import { refuseAtAccept } from './refuse-raw.ts';

export function acceptConnection(state: PrimaryState, socket: net.Socket): void {
  const { stats, log } = state.shared;
  const address = socket.remoteAddress ?? '';
  const conn: AcceptedConnection = {
    id: ++state.lastConnectionId,
    client: `${address}:${socket.remotePort}`,
    address,
    key: clientKey(address, state.options.ipv6Prefix),
    counted: false,
    handedOver: false,
  };
  stats.add('accepted');
  socket.on('error', ignoreSocketError); // a client that resets while queued must not crash the primary
  if (state.balancers) {
    // Behind a load balancer only the balancers connect; who the client is, the PROXY header says, and
    // the serving thread reads it (then applies the client ACL).
    if (!state.balancers(address)) {
      stats.add('proxyProtocolRefused');
      log.write({ event: 'client-denied', level: 'warn', conn: conn.id, client: conn.client, why: 'not a load balancer of --proxy-protocol-from' });
      return void socket.destroy();
    }
  } else if (!state.acl.allows(address)) {
    stats.add('clientsDenied');
    log.write({ event: 'client-denied', level: 'warn', conn: conn.id, client: conn.client, why: 'address outside --allow-client' });
    return void socket.destroy();
  }
  if (!passFdBudget(state, socket, conn)) return;
  if (!state.balancers && !passLimits(state, socket, conn)) return;
  if (debugLogged(state.shared)) log.write({ event: 'accepted', level: 'debug', conn: conn.id, client: conn.client });
  // A permit free now: hand over in this turn (the socket never waits, so it needs no queue bookkeeping).
  if (admitNow(state)) return handOver(state, socket, conn);
  state.queued.add(socket);
  socket.once('close', () => {
    state.queued.delete(socket);
    if (!conn.handedOver) state.caps.close(conn);
  });
  void admitQueued(state, socket, conn).then((result) => {
    if (result === 'admitted') handOver(state, socket, conn);
    else state.caps.close(conn);
  });
}

/** Bans and the per-client connection limits; false when the connection was refused. */
function passLimits(state: PrimaryState, socket: net.Socket, conn: AcceptedConnection): boolean {
  const { stats, log } = state.shared;
  if (state.limits.bannedFor(conn.key) > 0) {
    stats.add('bannedRefused');
    socket.destroy();
    return false;
  }
  const waitMs = state.limits.takeConnection(conn.key);
  if (waitMs > 0) {
    log.write({ event: 'conn-rate-limited', level: 'debug', conn: conn.id, client: conn.client, key: conn.key, connRate: state.options.connRate });
    refuseAtAccept(socket, 'CONN_RATE_LIMITED', `--conn-rate ${state.options.connRate}`, waitMs);
    return false;
  }
  const max = state.options.maxConnsPerClient;
  if (max > 0 && state.caps.count(conn.key) >= max) {
    stats.add('connCapRefused');
    log.write({ event: 'conn-cap-refused', level: 'debug', conn: conn.id, client: conn.client, key: conn.key, open: state.caps.count(conn.key) });
    refuseAtAccept(socket, 'TOO_MANY_CONNECTIONS', `--max-conns-per-client ${max}`, 1000);
    return false;
  }
  state.caps.open(conn);
  return true;
}

function ignoreSocketError(): void {}
