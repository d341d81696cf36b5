// Plain HTTP through proxyd with real clients (curl, undici) against a real origin.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request, ProxyAgent } from 'undici';
import { startOrigin, sha256, patternSha256 } from './helpers/origin.ts';
import { startTestProxy, readLog, tempDir } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

const origin = await startOrigin();
const proxy = await startTestProxy(t, { upstreamTimeoutMs: 1500 });
t.teardown(async () => {
  await proxy.close(1000);
  await origin.close();
});
const via = ['--proxy', proxy.url];

t.test('GET through the proxy', async (t) => {
  const r = await curl([...via, origin.url('/hello')]);
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'hello from origin\n');
  t.match(r.headers, /^via: 1\.1 proxyd-[0-9a-f]{8}\r?$/im, 'Via added to the response');
  t.match(r.headers, /^x-origin: yes/im, 'end-to-end headers pass');
});

t.test('POST and chunked upload bodies arrive intact, both ways', async (t) => {
  const file = join(tempDir(), 'body.bin');
  const body = randomBytes(3 * 1024 * 1024 + 17);
  writeFileSync(file, body);
  const r = await curl([...via, '--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream', origin.url('/echo')]);
  t.equal(r.status, 200);
  t.equal(sha256(r.body), sha256(body), 'echoed body matches (upload and download)');
  t.equal(origin.seen.at(-1)!.bodySha256, sha256(body), 'the origin received the exact body');
  t.equal(origin.seen.at(-1)!.headers.expect, undefined, 'Expect: 100-continue was answered by the proxy, not forwarded');

  const chunked = await curl([...via, '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, origin.url('/echo')]);
  t.equal(chunked.status, 200);
  t.equal(sha256(chunked.body), sha256(body), 'chunked upload round-trips');
  t.equal(origin.seen.at(-1)!.headers['transfer-encoding'], 'chunked', 'and reaches the origin chunked');
});

t.test('a 64 MiB download is streamed intact', async (t) => {
  const size = 64 * 1024 * 1024;
  const r = await curl([...via, origin.url(`/bytes/${size}`)], 60_000);
  t.equal(r.status, 200);
  t.equal(r.body.length, size);
  t.equal(sha256(r.body), patternSha256(size), 'checksum matches');
});

t.test('chunked responses, responses without a length, HEAD, 204 and 304', async (t) => {
  const chunked = await curl([...via, origin.url('/chunked')]);
  t.equal(chunked.body.toString(), 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
  const noLength = await curl([...via, origin.url('/nolength')]);
  t.equal(noLength.status, 200);
  t.equal(noLength.body.toString(), 'body until close\n', 'read until the origin closed');
  const head = await curl([...via, '--head', origin.url(`/bytes/1000`)]);
  t.equal(head.status, 200);
  t.match(head.headers, /content-length: 1000/i);
  t.equal(head.body.toString(), head.headers, 'curl --head prints only the head: no body bytes followed');
  t.equal((await curl([...via, origin.url('/status/204')])).status, 204);
  const notModified = await curl([...via, '-H', 'If-None-Match: "v1"', origin.url('/status/304')]);
  t.equal(notModified.status, 304);
  t.equal(notModified.body.length, 0);
});

t.test('hop-by-hop headers are not forwarded, either way; Via and Host are set', async (t) => {
  const r = await curl([
    ...via,
    '-H', 'Connection: keep-alive, X-Named-Hop',
    '-H', 'X-Named-Hop: secret',
    '-H', 'Keep-Alive: timeout=9',
    '-H', 'Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==',
    '-H', 'TE: trailers',
    '-H', 'X-End-To-End: yes',
    origin.url('/headers'),
  ]);
  const names = (JSON.parse(r.body.toString()) as string[]).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  for (const hop of ['x-named-hop', 'keep-alive', 'proxy-authorization', 'te', 'proxy-connection']) {
    t.notOk(names.includes(hop), `${hop} not forwarded`);
  }
  // The upstream connection has its own Connection header (proxyd's pool asks for keep-alive); the
  // client's, which named X-Named-Hop, is not passed on.
  t.equal(origin.seen.at(-1)!.headers.connection, 'keep-alive', "the client's Connection header is not forwarded");
  t.ok(names.includes('x-end-to-end'), 'end-to-end header forwarded');
  const seen = origin.seen.at(-1)!;
  t.match(seen.headers.via, /^1\.1 proxyd-[0-9a-f]{8}$/);
  t.equal(seen.headers.host, `127.0.0.1:${origin.port}`);

  const back = await curl([...via, origin.url('/hop')]);
  t.notMatch(back.headers, /x-secret-hop/i, 'a header named in the response Connection is dropped');
  t.match(back.headers, /x-end-to-end: passes/i);
});

t.test('upstream failures are answered, never hung: 502 refused, 504 timeout', async (t) => {
  const refused = await curl([...via, 'http://127.0.0.1:1/']);
  t.equal(refused.status, 502);
  t.match(refused.body.toString(), /connection refused/);
  const started = Date.now();
  const slow = await curl([...via, origin.url('/slow')]);
  t.equal(slow.status, 504, 'no answer within --upstream-timeout');
  t.ok(Date.now() - started < 10_000, 'answered after the upstream timeout, not hung');
});

t.test('an origin-form request gets a page saying this is a proxy', async (t) => {
  const r = await curl([`${proxy.url}/`]);
  t.equal(r.status, 400);
  t.match(r.body.toString(), /This is proxyd, a forward proxy/);
  t.match(r.body.toString(), /curl --proxy/);
});

t.test('undici ProxyAgent, keep-alive to the client and pooled connections upstream', async (t) => {
  // proxyTunnel: false makes undici send absolute-form requests instead of tunnelling with CONNECT.
  const agent = new ProxyAgent({ uri: proxy.url, proxyTunnel: false });
  const before = origin.connections;
  for (let i = 0; i < 20; i++) {
    const res = await request(origin.url('/hello'), { dispatcher: agent });
    t.equal(res.statusCode, 200);
    t.equal(await res.body.text(), 'hello from origin\n');
  }
  t.ok(origin.connections - before <= 3, `20 requests used ${origin.connections - before} upstream connections (pooled)`);
  await agent.close();
});

t.test('an Upgrade request in absolute form is relayed', async (t) => {
  const net = await import('node:net');
  const socket = net.connect(proxy.address.port, '127.0.0.1');
  socket.write(`GET ${origin.url('/shout')} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n`);
  let got = '';
  socket.on('data', (d) => {
    got += d;
    if (got.includes('\r\n\r\n') && !got.includes('HELLO')) socket.write('hello');
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo, got ${JSON.stringify(got)}`)), 5000);
    socket.on('data', () => {
      if (got.includes('HELLO')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  socket.destroy();
  t.match(got, /^HTTP\/1\.1 101 /, '101 passed back');
  t.match(got, /HELLO$/, 'bytes relayed both ways after the upgrade');
  t.equal(origin.seen.at(-1)!.headers.upgrade, 'shout', 'Upgrade header forwarded for an upgrade');
});

t.test('every request is in the log with client, method, URL, status, bytes and duration', async (t) => {
  await proxy.close(1000);
  const requests = readLog(proxy.logFile).filter((r) => r.event === 'request');
  const hello = requests.find((r) => r.url === origin.url('/hello'));
  t.ok(hello, 'the first GET is logged');
  t.match(hello, { method: 'GET', status: 200, client: /^127\.0\.0\.1:\d+$/, down: 18 });
  t.type(hello!.ms, 'number');
  t.ok(readLog(proxy.logFile).some((r) => r.event === 'upstream-error' && r.kind === 'ECONNREFUSED'), 'upstream error logged with its kind');
});
