// What the log and the counters say: a reload names what its files changed, a queue-full refusal is
// logged once (never first as "queued"), status is always a number (a cut response says so in a field
// of its own), HEAD has its own counter, and counts read as words ("1 domain", not "1 domains").
import t from 'tap';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startEchoServer, startOrigin } from './helpers/origin.ts';
import { startTestProxy, readLog, eventually, tempDir } from './helpers/proxy.ts';
import { openTunnelClient } from './helpers/tunnel-client.ts';
import { curl } from './helpers/curl.ts';
import { listChange, plural } from '../src/primary/words.ts';

const origin = await startOrigin();
const echo = await startEchoServer();
t.teardown(async () => {
  await origin.close();
  await echo.close();
});

t.test('words', async (t) => {
  t.equal(plural(1, 'domain'), '1 domain');
  t.equal(plural(0, 'domain'), '0 domains');
  t.equal(plural(2, 'connection'), '2 connections');
  t.equal(listChange(['a', 'b'], ['b', 'c', 'd']), '+2 −1');
  t.equal(listChange(['a'], ['a']), undefined);
});

t.test('a reload says what the re-read files changed, and the start says it in words', async (t) => {
  const dir = tempDir();
  const blocklist = join(dir, 'blocklist.txt');
  const users = join(dir, 'htpasswd');
  const hash = (p: string) => bcrypt.hashSync(p, 4);
  writeFileSync(blocklist, 'one.example\n');
  writeFileSync(users, `alice:${hash('a')}\n`);
  const proxy = await startTestProxy(t, { workers: 1, blocklistFile: blocklist, authFile: users });
  t.teardown(() => proxy.close(500));
  const started = () => readLog(proxy.logFile).find((r) => r.event === 'started');
  await eventually(() => started() !== undefined, 'started record');
  t.match(started(), { blocklist: `${blocklist} (1 domain)`, auth: `${users} (1 user)` });
  t.equal(started()!.destinations, 'public and private addresses, loopback within 127.0.0.0/8, never link-local or cloud metadata; CONNECT to ports 1-65535; plain HTTP to any port but 19,21-23,25,110,119,143,465,587,993,995', 'where it may go, --allow-dest included');

  const reloads = () => readLog(proxy.logFile).filter((r) => r.event === 'reload');
  await proxy.reload();
  await eventually(() => reloads().length === 1, 'first reload logged');
  t.equal(reloads()[0]!.changed, 'nothing', 'same files: nothing changed');

  writeFileSync(blocklist, 'one.example\ntwo.example\nthree.example\n');
  writeFileSync(users, `alice:${hash('new')}\nbob:${hash('b')}\n`);
  await proxy.reload();
  await eventually(() => reloads().length === 2, 'second reload logged');
  t.equal(reloads()[1]!.changed, 'blocklist +2 −0, users +1 −0, 1 new password', 'the files changed though their names did not');
  t.equal(reloads()[1]!.domains, 3);
});

t.test('a client refused because the queue is full is logged as queue-full only', async (t) => {
  const proxy = await startTestProxy(t, { workers: 1, maxClients: 1, maxWaiting: 1, queueTimeoutMs: 20_000 });
  t.teardown(() => proxy.close(500));
  const holder = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'holder');
  await eventually(() => holder.head !== undefined, 'holder admitted');
  const waiter = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'waiter');
  await eventually(() => proxy.shared.semaphore.waiting === 1, 'one waiting');
  const refused = openTunnelClient(proxy.address.port, `127.0.0.1:${echo.port}`, 'refused');
  await eventually(() => refused.head !== undefined, 'refused answered');
  t.match(refused.head, /^HTTP\/1\.1 503 /);
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'queue-full'), 'queue-full logged');
  const log = readLog(proxy.logFile);
  const refusedConn = log.find((r) => r.event === 'queue-full')!.conn;
  t.same(log.filter((r) => r.conn === refusedConn).map((r) => r.event), ['accepted', 'queue-full'], 'accepted, then refused: no "queued" in between');
  t.equal(log.filter((r) => r.event === 'queued').length, 1, 'only the client that really waited was queued');
  t.equal(proxy.shared.stats.get('queued'), 1, 'Stats "queued" counts the one that waited');
  t.equal(proxy.shared.stats.get('queueFull'), 1);
  for (const c of [holder, waiter, refused]) c.socket.destroy();
  await eventually(() => proxy.shared.stats.get('active') === 0 && proxy.shared.stats.get('waiting') === 0, 'every permit back');
});

t.test('status is a number in every record; a response cut short says cut=true', async (t) => {
  const proxy = await startTestProxy(t, { workers: 1 });
  t.teardown(() => proxy.close(500));
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200);
  // Ask for 64 MiB, read the head, leave.
  const socket = net.connect(proxy.address.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${origin.url('/bytes/67108864')} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  await new Promise((r) => socket.once('data', r));
  socket.destroy();
  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'request').length === 2, 'two request records');
  const requests = readLog(proxy.logFile).filter((r) => r.event === 'request');
  for (const r of requests) t.type(r.status, 'number', `status of ${r.url} is a number`);
  t.equal(requests.find((r) => String(r.url).endsWith('/hello'))!.cut, undefined, 'a whole response has no cut field');
  t.match(requests.find((r) => String(r.url).includes('/bytes/'))!, { status: 200, cut: true });
});

t.test('HEAD requests are counted as HEAD, not "other"', async (t) => {
  const proxy = await startTestProxy(t, { workers: 1 });
  t.teardown(() => proxy.close(500));
  t.equal((await curl(['--proxy', proxy.url, '--head', origin.url('/hello')])).status, 200);
  t.equal((await curl(['--proxy', proxy.url, '-X', 'OPTIONS', origin.url('/hello')])).status, 200);
  await eventually(() => proxy.shared.stats.get('requests') === 2, 'two requests counted');
  t.equal(proxy.shared.stats.get('methodHead'), 1);
  t.equal(proxy.shared.stats.get('methodOther'), 1, 'OPTIONS is still other');
});
