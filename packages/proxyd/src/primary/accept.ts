// Accept: every connection the listener gives the primary. Clients outside the ACL are refused at once
// (no permit, no thread, no byte read); the rest wait for a permit (admission.ts) and are handed over.
// With --proxy-protocol on, the peers are load balancers: anyone else is refused here, and the client
// ACL waits for the PROXY header, which the serving thread reads.
import type net from 'node:net';
import { admit } from './admission.ts';
import { handOver } from './hand-over.ts';
import type { AcceptedConnection, PrimaryState } from './primary-state.ts';

export function acceptConnection(state: PrimaryState, socket: net.Socket): void {
  const { stats, log } = state.shared;
  const address = socket.remoteAddress ?? '';
  const conn: AcceptedConnection = { id: ++state.lastConnectionId, client: `${address}:${socket.remotePort}`, address };
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
  log.write({ event: 'accepted', level: 'debug', conn: conn.id, client: conn.client });
  state.queued.add(socket);
  socket.once('close', () => state.queued.delete(socket));
  void admit(state, socket, conn).then((result) => {
    if (result === 'admitted') handOver(state, socket, conn);
  });
}

function ignoreSocketError(): void {}
