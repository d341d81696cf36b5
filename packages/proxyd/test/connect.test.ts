// CONNECT tunnels: HTTPS through the proxy with curl, port policy, failed connects, half-close.
import t from 'tap';
import net from 'node:net';
import { startTlsOrigin } from './helpers/tls-origin.ts';
import { startEchoServer } from './helpers/origin.ts';
import { startTestProxy, readLog, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

const tls = await startTlsOrigin();
const echo = await startEchoServer();
const proxy = await startTestProxy({ connectPorts: [[tls.port, tls.port], [echo.port, echo.port], [1, 1]] });
t.teardown(async () => {
  await proxy.close(1000);
  await tls.close();
  await echo.close();
});

/** Open a raw CONNECT tunnel; resolves with the socket and the proxy's answer head. */
function connectThrough(target: string): Promise<{ socket: net.Socket; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxy.address.port, '127.0.0.1');
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`no answer to CONNECT ${target}`)), 10_000);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve({ socket, head: buf.subarray(0, end).toString(), rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

t.test('HTTPS through a CONNECT tunnel, with curl checking the certificate', async (t) => {
  const url = `https://127.0.0.1:${tls.port}/`;
  const r = await curl(['--proxy', proxy.url, '--cacert', tls.caFile, '--data-binary', 'twelve bytes', url]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'secure hello, you sent 12 bytes\n');
  t.match(r.headers, /HTTP\/1\.1 200 Connection Established/);
});

t.test('a CONNECT to a port outside --connect-ports is refused with 403, before dialling', async (t) => {
  const { socket, head } = await connectThrough('127.0.0.1:25');
  socket.destroy();
  t.match(head, /^HTTP\/1\.1 403 Forbidden/);
  t.match(head, /X-Proxyd-Refusal: BLOCKED_PORT/);
});

t.test('a CONNECT to a closed port is answered 502', async (t) => {
  const { socket, head, rest } = await connectThrough('127.0.0.1:1');
  socket.destroy();
  t.match(head, /^HTTP\/1\.1 502 Bad Gateway/);
  t.match(rest.toString(), /connection refused/);
});

t.test('CONNECT without a port is a 400', async (t) => {
  const { socket, head } = await connectThrough('127.0.0.1');
  socket.destroy();
  t.match(head, /^HTTP\/1\.1 400 /);
});

t.test('half-close is respected: the client ends its side and still receives the answer', async (t) => {
  const { socket, head } = await connectThrough(`127.0.0.1:${echo.port}`);
  t.match(head, /^HTTP\/1\.1 200 Connection Established/);
  let got = '';
  socket.on('data', (d) => (got += d));
  socket.write('ping\n');
  socket.end(); // FIN: we send nothing more, but keep reading
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  t.equal(got, 'ping\nbye after your FIN\n', 'echo and the reply sent after our FIN both arrived');
});

t.test('a tunnel relays a large transfer both ways with back-pressure', async (t) => {
  const { socket } = await connectThrough(`127.0.0.1:${echo.port}`);
  const total = 32 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 7);
  let received = 0;
  const done = new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= total) resolve();
    });
  });
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      sent += chunk.length;
      if (!socket.write(chunk)) return void socket.once('drain', pump);
    }
  };
  pump();
  await done;
  socket.destroy();
  t.equal(received, total, '32 MiB echoed through the tunnel');
});

t.test('tunnels are logged with bytes each way', async (t) => {
  await eventually(() => proxy.shared.stats.get('tunnels') === 0, 'every tunnel closed');
  await proxy.close(1000);
  const tunnels = readLog(proxy.logFile).filter((r) => r.event === 'tunnel');
  t.ok(tunnels.length >= 3, `${tunnels.length} tunnels logged`);
  t.ok(tunnels.some((r) => r.target === `127.0.0.1:${tls.port}` && Number(r.up) > 0 && Number(r.down) > 0), 'the HTTPS tunnel, with bytes');
});
