// Parent proxies (issue 19), health and the protocol: Debian's Squid and proxyd as parents; chained
// CONNECT with TLS, failover when a parent is killed, a parent's refusal.
import t from 'tap';
import { keepAlive, parent, get, many, child, proxydParent, metricsOf, tunnel, echoThrough } from './helpers/parents.ts';
import http from 'node:http';
import tls from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { eventually, readLog, tempDir } from './helpers/proxy.ts';
import { sha256, startEchoServer, startOrigin } from './helpers/origin.ts';
import { startTlsOrigin } from './helpers/tls-origin.ts';
import { startSquid, squidMissing } from './helpers/squid.ts';
import { freePort } from './helpers/haproxy.ts';

t.setTimeout(300_000); // real proxies as parents, on a shared 2-core machine
t.teardown(() => keepAlive.destroy());
const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('chained CONNECT: TLS to a loopback origin through proxyd and Squid, bytes checked by SHA-256', { skip: squidMissing }, async (t) => {
  const squid = await startSquid(t);
  const tlsOrigin = await startTlsOrigin();
  t.teardown(() => tlsOrigin.close());
  const proxy = await child(t, [parent(`http://127.0.0.1:${squid.port},name=squid`)], { neverDirect: true });
  const { head, socket } = await tunnel(proxy.address.port, `127.0.0.1:${tlsOrigin.port}`);
  t.match(head, /^HTTP\/1.1 200/, 'the tunnel through Squid is open');
  const upload = Buffer.alloc(256 * 1024, 7);
  const secure = tls.connect({ socket, ca: readFileSync(tlsOrigin.caFile), host: '127.0.0.1' } as tls.ConnectionOptions);
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = http.request({ method: 'POST', path: '/', headers: { host: '127.0.0.1', 'content-length': upload.length }, createConnection: () => secure }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('error', reject);
    req.end(upload);
  });
  t.equal(sha256(body), sha256(`secure hello, you sent ${upload.length} bytes\n`), 'TLS through two proxies: the origin got every byte, and its answer came back intact');
  secure.destroy();
  // Bulk bytes both ways through the chained tunnel, checked by SHA-256.
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const bulk = await tunnel(proxy.address.port, `127.0.0.1:${echo.port}`);
  t.match(bulk.head, /^HTTP\/1.1 200/);
  const sent = randomBytes(1024 * 1024);
  const back = await echoThrough(bulk.socket, sent);
  bulk.socket.destroy();
  t.equal(sha256(back), sha256(sent), '1 MiB echoed through proxyd and Squid, SHA-256 equal');
  // Plain HTTP through Squid too: absolute form is the standard protocol.
  const r = await get(proxy.address.port, origin.url('/headers'), false);
  t.equal(r.status, 200, 'HTTP through Squid');
  t.match(r.body, /squid/i, "the origin saw Squid's Via");
  await eventually(() => readLog(proxy.logFile).some((x) => x.event === 'tunnel' && x.parent === 'squid'), 'the tunnel record names the parent');
});

t.test("refusals: a parent answering 407 is a clear 502 naming it; its credentials are never logged", async (t) => {
  const dir = tempDir();
  const users = join(dir, 'users');
  writeFileSync(users, `alice:{SHA}${createHash('sha1').update('right-password').digest('base64')}\n`);
  const guarded = await proxydParent(t, { authFile: users });
  const secret = 'Wr0ngS3cret';
  const proxy = await child(t, [parent(`http://alice:${secret}@127.0.0.1:${guarded.address.port},name=guarded`)]);
  const echo = await startOrigin();
  t.teardown(() => echo.close());
  const { head, socket } = await tunnel(proxy.address.port, `127.0.0.1:${echo.port}`);
  socket.destroy();
  t.match(head, /^HTTP\/1.1 502 /, 'CONNECT: 502');
  t.match(head, /X-Proxyd-Refusal: PARENT_REFUSED/, 'CONNECT: the refusal code');
  const r = await get(proxy.address.port, origin.url('/hello'), false);
  t.equal(r.status, 502, 'HTTP: 502, not the parent\'s 407');
  t.match(r.body, /parent guarded answered 407/, 'the answer names the parent and its status');
  t.equal(r.headers['x-proxyd-refusal'], 'PARENT_REFUSED');
  await eventually(() => readLog(proxy.logFile).filter((x) => x.event === 'parent-refused').length >= 2, 'both refusals logged');
  await new Promise((r) => setTimeout(r, 200));
  const logText = readFileSync(proxy.logFile, 'utf8') + readFileSync(proxy.stdoutFile, 'utf8');
  const encoded = Buffer.from(`alice:${secret}`).toString('base64');
  t.notOk(logText.includes(secret) || logText.includes(encoded), 'neither the password nor its Basic encoding is in any log line');
  t.notOk((await metricsOf(proxy)).includes(secret), 'nor in the metrics');
  // With the right password the same parent lets it through.
  const ok = await child(t, [parent(`http://alice:right-password@127.0.0.1:${guarded.address.port},name=guarded`)]);
  t.equal((await get(ok.address.port, origin.url('/hello'), false)).status, 200, 'right credentials: 200 through the parent');
});

t.test('failover: kill a parent mid-run; requests and new tunnels see no failure; down in metrics; back after restart', { timeout: 120_000, skip: squidMissing }, async (t) => {
  // Parent a is Squid, a process of its own, killed with SIGKILL (no goodbye to its connections) and
  // started again on the same port.
  const portA = await freePort();
  const a = await startSquid(t, portA);
  const b = await proxydParent(t);
  const echo = await startOrigin();
  t.teardown(() => echo.close());
  const proxy = await child(t, [parent(`http://127.0.0.1:${portA},name=a`), parent(`http://127.0.0.1:${b.address.port},name=b`)], { parentDownAfter: 2, parentRetryMs: 500 });
  const failures: string[] = [];
  let done = 0;
  const run = many(300, 4, async (i) => {
    const r = await get(proxy.address.port, origin.url(`/hello?${i}`)).catch((err: Error) => ({ status: 0, body: err.message }));
    if (r.status !== 200) failures.push(`${i}: ${r.status} ${r.body.slice(0, 160)}`);
    done++;
  });
  await eventually(() => done >= 40, 'some requests done');
  const killedAt = done;
  await a.stop(); // SIGKILL: parent a dies mid-run
  await run;
  t.ok(killedAt < 300, `a was killed mid-run (after ${killedAt} of 300)`);
  t.same(failures, [], 'no request failed');
  for (let i = 0; i < 4; i++) {
    const { head, socket } = await tunnel(proxy.address.port, `127.0.0.1:${echo.port}`);
    socket.destroy();
    t.match(head, /^HTTP\/1.1 200/, `new tunnel ${i + 1} opened (through b)`);
  }
  t.match(await metricsOf(proxy), /proxyd_parent_up\{parent="a"\} 0/, 'a is marked down in the metrics');
  t.ok(readLog(proxy.logFile).some((r) => r.event === 'parent-down' && r.parent === 'a'), 'parent-down logged');
  await startSquid(t, portA);
  await eventually(async () => {
    await get(proxy.address.port, origin.url('/hello'));
    return (await metricsOf(proxy)).includes('proxyd_parent_up{parent="a"} 1');
  }, 'a comes back up after it restarts', 15_000);
  const requestsOfA = async (): Promise<number> => Number(/proxyd_parent_requests_total\{parent="a"\} (\d+)/.exec(await metricsOf(proxy))?.[1]);
  const before = await requestsOfA();
  for (let i = 0; i < 10; i++) t.equal((await get(proxy.address.port, origin.url('/hello'))).status, 200);
  t.ok((await requestsOfA()) >= before + 4, 'the restarted a takes its share again');
});

