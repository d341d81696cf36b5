// CONNECT tunnels: HTTPS through the proxy with curl, port policy, failed connects, half-close.
import t from 'tap';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startTlsOrigin } from './helpers/tls-origin.ts';
import { startEchoServer } from './helpers/origin.ts';
import { startTestProxy, readLog, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

const tls = await startTlsOrigin();
const echo = await startEchoServer();
const patterns = await startPatternServer();
const proxy = await startTestProxy(t, { connectPorts: [[tls.port, tls.port], [echo.port, echo.port], [patterns.port, patterns.port], [1, 1]] });
t.teardown(async () => {
  await proxy.close(1000);
  await tls.close();
  await echo.close();
  await patterns.close();
});

/**
 * A TCP server that, asked "id size style\n", sends `size` random bytes and closes. It remembers the
 * SHA-256 of what it sent under `id`. Style "dribble": a few bytes at a time, each write on its own turn
 * of the event loop (the proxy sees a stream of small reads). Style "burst": large writes, then the last
 * 256 KiB dribbled.
 */
async function startPatternServer(): Promise<{ port: number; sha256(id: string): string | undefined; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const sent = new Map<string, string>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.once('data', (line) => {
      const [id = '', size = '0', style = 'burst'] = line.toString().trim().split(' ');
      const data = randomBytes(Number(size)); // random: a misplaced or stale byte cannot look right
      sent.set(id, createHash('sha256').update(data).digest('hex'));
      const dribbleFrom = style === 'burst' ? Math.max(0, data.length - 256 * 1024) : 0;
      let at = 0;
      let step = data.length;
      const send = (): void => {
        while (at < data.length) {
          step = (step * 1103515245 + 12345) >>> 0;
          const small = at >= dribbleFrom;
          const n = small ? 1 + (step % 300) : 1024 + (step % (200 * 1024));
          const ok = s.write(data.subarray(at, at + n));
          at += n;
          if (small) return void (ok ? setImmediate(send) : s.once('drain', send));
          if (!ok) return void s.once('drain', send);
        }
        s.end();
      };
      send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sha256: (id) => sent.get(id),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Tunnels the proxy opened in this file (answered 200): each must be logged once, when it closes. */
let tunnelsOpened = 0;

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
      const head = buf.subarray(0, end).toString();
      if (/^HTTP\/1\.1 200 /.test(head)) tunnelsOpened++;
      resolve({ socket, head, rest: buf.subarray(end + 4) });
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
  tunnelsOpened++;
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

// Found while making workers.test.ts count permits: a client that sends its FIN right behind the
// CONNECT (or that gave up while queued at the semaphore, and is admitted later) gets its tunnel, but the
// FIN is never passed on — it arrives before the relay starts listening — so the tunnel and its permit
// stay until --idle-timeout (2 minutes by default). With clients leaving a long queue, each of them
// holds a permit that long after admission.
// Was a bug: a FIN read before the relay existed was lost, and the tunnel held its permit until the idle timeout.
t.test('a client that half-closes right after its CONNECT still gets the answer sent after its FIN', async (t) => {
  const own = await startTestProxy(t, { workers: 1, connectPorts: [[echo.port, echo.port]] });
  t.teardown(() => own.close(200));
  const socket = net.connect({ port: own.address.port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => void socket.destroy());
  let got = '';
  let closed = false;
  socket.on('data', (d) => (got += d));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  socket.end(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
  await eventually(() => got.includes('\r\n\r\n'), 'the answer to CONNECT');
  t.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\n/, 'the tunnel is opened');
  const deadline = Date.now() + 3000;
  while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(got.split('\r\n\r\n')[1], 'bye after your FIN\n', 'the echo server saw our FIN and answered');
  t.ok(closed, 'the tunnel closed within 3 s');
  await eventually(() => own.shared.semaphore.held === 0, 'its permit is back');
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

t.test('many tunnels at once, with slow readers, each receive exactly the bytes their origin sent', async (t) => {
  // The proxy reads origins into recycled buffers (pooled-reads.ts); a buffer reused while a write of
  // its bytes is still pending would put one tunnel's bytes, or stale ones, into another's stream. Some
  // readers sleep at first ("burst": megabytes in large writes; "slow": a long dribble of small ones):
  // the kernel buffers towards them fill and the proxy's writes to them wait, after large reads and
  // after small ones. Meanwhile "dribble" tunnels, read at once, keep small reads going on the thread.
  const TUNNELS = 12;
  const STYLES = ['burst', 'dribble', 'slow'] as const;
  const results = await Promise.all(
    Array.from({ length: TUNNELS }, async (_, i) => {
      const style = STYLES[i % 3]!;
      const size = style === 'burst' ? 8 * 1024 * 1024 : style === 'slow' ? 1024 * 1024 : 512 * 1024;
      const sleeps = style !== 'dribble';
      const { socket, rest } = await connectThrough(`127.0.0.1:${patterns.port}`);
      if (sleeps) socket.pause();
      const hash = createHash('sha256').update(rest);
      let received = rest.length;
      const finished = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`tunnel ${i}: ${received} of ${size} bytes after 30 s`)), 30_000);
        socket.on('data', (d: Buffer) => {
          hash.update(d);
          received += d.length;
        });
        socket.once('end', () => (clearTimeout(timer), resolve()));
        socket.once('error', (err) => (clearTimeout(timer), reject(err)));
      });
      socket.write(`tunnel-${i} ${size} ${style}\n`);
      if (sleeps) {
        await new Promise((r) => setTimeout(r, 400 + 40 * i));
        socket.resume();
      }
      await finished;
      socket.destroy();
      return { style, size, received, sha: hash.digest('hex'), expected: patterns.sha256(`tunnel-${i}`) };
    }),
  );
  for (const [i, r] of results.entries()) {
    t.equal(r.received, r.size, `tunnel ${i} (${r.style}): every byte arrived`);
    t.equal(r.sha, r.expected, `tunnel ${i} (${r.style}): the bytes are the origin's, in order`);
  }
});

t.test('tunnels are logged with bytes each way', async (t) => {
  await eventually(() => proxy.shared.stats.get('tunnels') === 0, 'every tunnel closed');
  await proxy.close(1000);
  const tunnels = readLog(proxy.logFile).filter((r) => r.event === 'tunnel');
  t.equal(tunnels.length, tunnelsOpened, `each of the ${tunnelsOpened} tunnels is logged once`);
  t.ok(tunnels.some((r) => r.target === `127.0.0.1:${tls.port}` && Number(r.up) > 0 && Number(r.down) > 0), 'the HTTPS tunnel, with bytes');
});
