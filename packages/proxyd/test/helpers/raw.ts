// Raw TCP exchanges with the proxy, for input no well-behaved client would send.
import net from 'node:net';

/** Send `bytes`, collect everything until the proxy closes or `timeoutMs` passes (from `localAddress`, a client of its own). */
export function exchange(port: number, bytes: string | Buffer, timeoutMs = 5000, localAddress?: string): Promise<{ text: string; closedByPeer: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    let text = '';
    let closedByPeer = false;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('end', () => (closedByPeer = true));
    socket.on('error', () => (closedByPeer = true));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedByPeer });
    });
    socket.write(bytes);
  });
}
