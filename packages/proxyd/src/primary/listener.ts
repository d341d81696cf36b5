// The listening socket. It opens before the serving threads are up (they must know its port to refuse
// loops through the proxy) and holds connections that arrive meanwhile until the primary is ready.
import net from 'node:net';

export interface Listener {
  readonly server: net.Server;
  readonly address: net.AddressInfo;
  /** Hand every connection to `accept` from now on, beginning with those that arrived while starting. */
  open(accept: (socket: net.Socket) => void): void;
  /** Connections that arrived while starting and are held until open(). */
  readonly held: number;
}

export async function listenPaused(host: string, port: number): Promise<Listener> {
  const early: net.Socket[] = [];
  let accept: ((socket: net.Socket) => void) | undefined;
  // pauseOnConnect: the primary never reads a socket it will transfer (a socket that has started reading
  // cannot be transferred). No noDelay here: the serving thread sets TCP_NODELAY on the connection it
  // gets (connection-task.ts); setting it here too was a second setsockopt for every connection.
  const server = net.createServer({ pauseOnConnect: true }, (socket) => (accept ? accept(socket) : early.push(socket)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    address: server.address() as net.AddressInfo,
    open(fn) {
      accept = fn;
      for (const socket of early.splice(0)) fn(socket);
    },
    get held() {
      return early.length;
    },
  };
}
