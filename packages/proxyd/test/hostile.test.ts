// Hostile input: each case is followed by a normal request that must still succeed. The origin records
// every request it receives, so a smuggled second request would show.
import t, { type Test } from 'tap';
import net from 'node:net';
import { startOrigin } from './helpers/origin.ts';
import { DEFAULTS } from '../src/config/options.ts';
import { startTestProxy, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { exchange } from './helpers/raw.ts';

const origin = await startOrigin();
const proxy = await startTestProxy(t, { workers: 2, headersTimeoutMs: 1000, maxClients: 2000, maxWaiting: 2000 });
t.teardown(async () => {
  await proxy.close(1000);
  await origin.close();
});
const port = proxy.address.port;
const host = `127.0.0.1:${origin.port}`;

async function stillServes(t: Test, what: string): Promise<void> {
  const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  t.equal(r.status, 200, `after ${what}: a normal request is served`);
}

t.test('malformed request lines and garbage bytes get 400 and a close', async (t) => {
  const inputs = [
    'GARBAGE\r\n\r\n',
    '\x00\x01\x02\x03\xff\xfe\r\n\r\n',
    'GET  HTTP/1.1\r\n\r\n',
    `GET http://${host}/hello HTTP/9.9\r\n\r\n`,
    `GET http://${host}/hello\r\n\r\n`,
    `GET http://${host}/hello HTTP/1.1\r\nNo-Colon-Header\r\n\r\n`,
    `GET http://${host}/hello HTTP/1.1\r\nHost: a\r\n Folded: continuation\r\n\r\n`,
  ];
  for (const input of inputs) {
    const { text, closedByPeer } = await exchange(port, input);
    t.match(text, /^HTTP\/1\.1 400 /, `${JSON.stringify(input.slice(0, 40))} → 400`);
    t.ok(closedByPeer, 'and the connection is closed');
  }
  await stillServes(t, 'garbage');
});

t.test('a Connection header naming other headers, hop-by-hop and duplicated ones (CVE-2023-49606 shape)', async (t) => {
  const body = 'exactly this body';
  const { text } = await exchange(
    port,
    `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nConnection: X-A, x-a, Keep-Alive, keep-alive, Content-Length, Host, Connection, TE\r\n` +
      `Connection: close, X-B\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nKeep-Alive: timeout=1\r\nTE: trailers\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  t.match(text, /^HTTP\/1\.1 200 /);
  t.ok(text.includes(body), 'the echoed body came back');
  const seen = origin.seen.at(-1)!;
  t.equal(seen.bodySha256, (await import('./helpers/origin.ts')).sha256(body));
  t.equal(seen.headers['x-a'], undefined, 'X-A (named) dropped');
  t.equal(seen.headers['x-b'], undefined, 'X-B (named in a second Connection header) dropped');
  t.equal(seen.headers['x-c'], '3', 'X-C (not named) forwarded');
  t.equal(seen.headers.host, host, 'Host is set from the URL even when named');
  await stillServes(t, 'Connection naming headers');
});

/** An absolute-form target of exactly `length` bytes, to the origin. */
function targetOf(length: number): string {
  const prefix = `http://${host}/`;
  return prefix + 'a'.repeat(length - prefix.length);
}

t.test('an oversized request line or head: 414 / 431 at the default limits', async (t) => {
  const { maxUrlBytes, maxHeaderBytes } = DEFAULTS;
  const atLimit = await exchange(port, `GET ${targetOf(maxUrlBytes)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.match(atLimit.text, /^HTTP\/1\.1 404 /, `a ${maxUrlBytes}-byte target (--max-url-length) is forwarded: the origin answers 404`);
  const long = await exchange(port, `GET ${targetOf(maxUrlBytes + 1)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.match(long.text, /^HTTP\/1\.1 414 /, `a ${maxUrlBytes + 1}-byte target → 414`);
  const huge = await exchange(port, `GET ${targetOf(maxHeaderBytes + 1000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  t.match(huge.text, /^HTTP\/1\.1 431 /, `a request line longer than --max-header-size (${maxHeaderBytes}) → 431`);
  const bigHeader = await exchange(port, `GET http://${host}/hello HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(maxHeaderBytes + 1000)}\r\n\r\n`);
  t.match(bigHeader.text, /^HTTP\/1\.1 431 /, 'one header longer than --max-header-size → 431');
  const many = Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`).join('\r\n');
  const thousands = await exchange(port, `GET http://${host}/hello HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`);
  t.match(thousands.text, /^HTTP\/1\.1 431 /, `5000 small headers (${many.length} bytes) → 431`);
  await stillServes(t, 'oversized heads');
});

t.test('--max-url-length and --max-header-size set other limits', async (t) => {
  const small = await startTestProxy(t, { workers: 1, maxUrlBytes: 100, maxHeaderBytes: 2048 });
  t.teardown(() => small.close(500));
  const header = `X-Mid: ${'m'.repeat(3000)}`; // over 2048, well under the default
  const viaDefault = await exchange(port, `GET http://${host}/hello HTTP/1.1\r\nHost: x\r\n${header}\r\n\r\n`);
  t.match(viaDefault.text, /^HTTP\/1\.1 200 /, 'a 3 KB header passes at the default limit');
  const viaSmall = await exchange(small.address.port, `GET http://${host}/hello HTTP/1.1\r\nHost: x\r\n${header}\r\n\r\n`);
  t.match(viaSmall.text, /^HTTP\/1\.1 431 /, 'and is refused with --max-header-size 2048');
  t.match((await exchange(small.address.port, `GET ${targetOf(100)} HTTP/1.1\r\nHost: x\r\n\r\n`)).text, /^HTTP\/1\.1 404 /, 'a 100-byte target passes --max-url-length 100');
  t.match((await exchange(small.address.port, `GET ${targetOf(101)} HTTP/1.1\r\nHost: x\r\n\r\n`)).text, /^HTTP\/1\.1 414 /, 'a 101-byte target does not');
});

t.test('request smuggling shapes are refused; the origin never sees a second request', async (t) => {
  const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const chunkedSmuggle = `0\r\n\r\n${smuggled}`;
  const cases: [string, string][] = [
    ['invalid Content-Length', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nContent-Length: abc\r\n\r\nxyz`],
    ['duplicated Content-Length, different values', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nContent-Length: ${5 + smuggled.length}\r\n\r\nhello${smuggled}`],
    ['Content-Length with Transfer-Encoding', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${chunkedSmuggle.length}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkedSmuggle}`],
    ['Transfer-Encoding: chunked, then identity', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunkedSmuggle}`],
    ['obfuscated Transfer-Encoding: xchunked', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc`],
    ['Transfer-Encoding with a space before the colon', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding : chunked\r\n\r\n${chunkedSmuggle}`],
    ['invalid chunk size', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n`],
    ['chunk size overflow', `POST http://${host}/echo HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n`],
  ];
  for (const [what, input] of cases) {
    const { text } = await exchange(port, input, 3000);
    t.match(text, /^HTTP\/1\.1 (400|501) /, `${what} → refused`);
  }
  await stillServes(t, 'smuggling attempts');
  t.equal(origin.seen.filter((r) => r.url === '/smuggled').length, 0, 'the origin never received a smuggled request');
});

t.test('absolute URIs with user-info are refused', async (t) => {
  // curl would move user:secret into an Authorization header; send the URI as it is.
  const { text } = await exchange(port, `GET http://user:secret@${host}/hello HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  t.match(text, /^HTTP\/1\.1 400 /);
  t.match(text, /user name or password/);
  t.equal(origin.seen.filter((r) => r.headers.authorization !== undefined).length, 0, 'nothing was forwarded');
});

t.test('slowloris: hundreds of connections dribbling a header byte at a time; a normal client is served quickly', async (t) => {
  const SLOW = 200;
  const slow: net.Socket[] = [];
  const answers: string[] = Array(SLOW).fill('');
  const closedAt: number[] = [];
  const opened = Date.now();
  for (let i = 0; i < SLOW; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('data', (d: Buffer) => (answers[i] += d.toString('latin1')));
    s.on('close', () => closedAt.push(Date.now() - opened));
    slow.push(s);
  }
  const head = `GET http://${host}/hello HTTP/1.1\r\nHost: x\r\nX-Slow: `;
  let sent = 0;
  const dribble = setInterval(() => {
    for (const s of slow) if (!s.destroyed) s.write(head[sent % head.length]!);
    sent++;
  }, 250);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
    t.equal(r.status, 200);
    t.ok(Date.now() - started < 2000, `a normal client was served in ${Date.now() - started} ms`);
    await eventually(() => closedAt.length === SLOW, `the header timeout closes every slow connection (${closedAt.length} closed, active ${proxy.shared.stats.get('active')}, bad ${proxy.shared.stats.get('badRequests')})`, 10_000);
  } finally {
    clearInterval(dribble);
    for (const s of slow) s.destroy();
  }
  // Closed by the proxy, each with a 408, while they were still sending (no test code closed them).
  t.equal(answers.filter((a) => /^HTTP\/1\.1 408 /.test(a)).length, SLOW, `all ${SLOW} were answered 408 Request Timeout`);
  t.ok(Math.max(...closedAt) < 10_000, `the last one was closed ${Math.max(...closedAt)} ms after they connected (--headers-timeout 1 s)`);
});

t.test('a thousand idle connections: a normal client is still served', async (t) => {
  const idle: net.Socket[] = [];
  for (let i = 0; i < 1000; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    idle.push(s);
  }
  await eventually(() => proxy.shared.stats.get('active') >= 1000, '1000 connections admitted', 15_000);
  const started = Date.now();
  const r = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  t.equal(r.status, 200);
  t.ok(Date.now() - started < 2000, `served in ${Date.now() - started} ms beside 1000 idle connections`);
  for (const s of idle) s.destroy();
  await eventually(() => proxy.shared.stats.get('active') === 0, 'all released', 15_000);
});

t.test('a client that reads very slowly: back-pressure holds the origin back, nothing piles up', async (t) => {
  const before = origin.bytesServed;
  const size = 256 * 1024 * 1024;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${origin.url(`/bytes/${size}`)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  let received = 0;
  socket.on('data', (d: Buffer) => {
    received += d.length;
    socket.pause();
    setTimeout(() => socket.resume(), 50); // about 64 KB every 50 ms at most
  });
  await new Promise((r) => setTimeout(r, 2000));
  const served = origin.bytesServed - before;
  socket.destroy();
  t.ok(received > 0, `the client read ${(received / 1e6).toFixed(1)} MB`);
  t.ok(served < received + 32 * 1024 * 1024, `the origin was held to ${(served / 1e6).toFixed(1)} MB of ${size / 1e6} MB (socket buffers, not the whole body)`);
  await stillServes(t, 'a slow reader');
});

t.test('a client that half-closes after its request still receives the whole response', async (t) => {
  const size = 2 * 1024 * 1024;
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let bytes = 0;
  let head = '';
  socket.on('data', (d: Buffer) => {
    if (!head.includes('\r\n\r\n')) head += d.toString('latin1');
    bytes += d.length;
  });
  socket.write(`GET ${origin.url(`/bytes/${size}`)} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  socket.end(); // FIN right after the request
  await new Promise((r) => socket.once('close', r));
  t.match(head, /^HTTP\/1\.1 200 /);
  const headLength = head.indexOf('\r\n\r\n') + 4;
  t.equal(bytes - headLength, size, 'every body byte arrived after our FIN');
});

t.test('an upstream that resets mid-response: the client connection is cut, not hung; others go on', async (t) => {
  const r = await curl(['--proxy', proxy.url, origin.url('/reset')], 10_000);
  t.not(r.code, 0, `curl reports the cut response (exit ${r.code})`);
  t.not(r.code, 28, 'not a timeout: the proxy passed the reset on');
  await stillServes(t, 'an upstream reset');
});

// Regression (found by fuzz.test.ts, seed 370469537): a valid request followed by garbage on the same
// connection. The parse error closes the socket while the first request is still waiting for its
// origin; when the answer came, pipeline() threw "Cannot pipe to a closed or destroyed stream" and the
// uncaught error ended the worker thread, with every connection on it.
t.test('a request followed by garbage does not take its worker down when the answer comes late', async (t) => {
  const started = proxy.shared.stats.get('workersStarted'); // a dead worker is replaced: this would grow
  for (let i = 0; i < 10; i++) {
    await exchange(port, `GET ${origin.url('/delay/100')} HTTP/1.1\r\nHost: ${host}\r\n\r\nGARBAGE\r\n\r\n`, 300);
  }
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(proxy.shared.stats.get('workersStarted'), started, 'no worker died and had to be replaced');
  t.equal(proxy.shared.stats.get('workerErrors'), 0, 'no connection was lost to a dying worker');
  await stillServes(t, 'garbage after a slow request');
});
