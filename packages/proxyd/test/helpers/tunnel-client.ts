// A raw CONNECT client that records when (and what) the proxy answered: for the admission tests,
// where some clients are held waiting at the semaphore.
import net from 'node:net';

export interface TunnelClient {
  name: string;
  socket: net.Socket;
  /** The proxy's answer head ("HTTP/1.1 200 …"), once it arrives. */
  head: string | undefined;
  /** Everything received after the head. */
  body: string;
  answeredAt: number | undefined;
  closed: boolean;
}

export function openTunnelClient(proxyPort: number, target: string, name: string): TunnelClient {
  const socket = net.connect(proxyPort, '127.0.0.1');
  const client: TunnelClient = { name, socket, head: undefined, body: '', answeredAt: undefined, closed: false };
  let buf = '';
  socket.on('data', (d: Buffer) => {
    if (client.head !== undefined) return void (client.body += d.toString());
    buf += d.toString();
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    client.head = buf.slice(0, end);
    client.body = buf.slice(end + 4);
    client.answeredAt = Date.now();
  });
  socket.on('error', () => {});
  socket.on('close', () => (client.closed = true));
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  return client;
}
