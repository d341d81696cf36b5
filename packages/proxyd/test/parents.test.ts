// Parent proxies (issue 19): proxyd forwarding through real proxies on loopback — other proxyd
// instances and Debian's Squid — balanced by weight, by load and by host, failing over by health.
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { BIN, eventually, readLog, startCliProxy, startTestProxy, tempDir, type CliProxy, type TestProxy } from './helpers/proxy.ts';
import { spawnSync } from 'node:child_process';
import { exchange } from './helpers/raw.ts';
import { sha256, startEchoServer, startOrigin, type Origin } from './helpers/origin.ts';
import { startTlsOrigin } from './helpers/tls-origin.ts';
import { startSquid, squidMissing } from './helpers/squid.ts';
import { freePort } from './helpers/haproxy.ts';
import { parseParent, type ParentSpec } from '../src/upstream/parent-spec.ts';
import type { ProxyOptions } from '../src/config/options.ts';
import { createMetrics } from '../src/admin/metrics.ts';
import { snapshot } from '../src/admin/snapshot.ts';

const metricsOf = (p: TestProxy): Promise<string> => createMetrics(p).metrics();

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
t.teardown(() => keepAlive.destroy());

function parent(text: string): ParentSpec {
  const p = parseParent(text);
  if (!p.ok) throw new Error(p.problem);
  return p.value;
}

/** GET `url` through the proxy on `port` (absolute form, keep-alive): status and body. */
function get(port: number, url: string, agent: http.Agent | false = keepAlive): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: url, agent, headers: { host: new URL(url).host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
  });
}

/** Run `count` requests, `parallel` at a time. */
async function many(count: number, parallel: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) await one(next++);
  }));
}

/** Requests a proxyd parent has forwarded (its shared counters). */
function served(p: TestProxy): number {
  return p.shared.stats.get('allowed');
}

async function child(t: Test, parents: ParentSpec[], extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const proxy = await startTestProxy(t, { parents, logLevel: 'info', allowDest: ['127.0.0.0/8', '::1/128'], ...extra });
  t.teardown(() => proxy.close(0));
  return proxy;
}

async function proxydParent(t: Test, extra: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const p = await startTestProxy(t, { workers: 1, admin: undefined, logLevel: 'info', allowDest: ['127.0.0.0/8', '::1/128'], ...extra });
  t.teardown(() => p.close(0));
  return p;
}


let origin: Origin;
t.before(async () => {
  origin = await startOrigin();
});
t.teardown(() => origin.close());

t.test('weighted round-robin: weights 3:1 split 1,000 requests 3:1 (±10%)', { timeout: 240_000 }, async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},weight=3,name=a`), parent(`http://127.0.0.1:${b.address.port},weight=1,name=b`)]);
  let ok = 0;
  await many(1000, 16, async (i) => {
    const r = await get(proxy.address.port, origin.url(`/hello?${i}`));
    if (r.status === 200) ok++;
  });
  t.equal(ok, 1000, 'every request answered 200');
  const [na, nb] = [served(a), served(b)];
  t.equal(na + nb, 1000, 'every request went through a parent');
  t.ok(Math.abs(na / nb - 3) <= 0.3, `split ${na}:${nb} is 3:1 within ±10%`);
  const metrics = await metricsOf(proxy);
  t.match(metrics, /proxyd_parent_requests_total\{parent="a"\} 7\d\d/, 'per-parent requests in /metrics');
  t.match(metrics, /proxyd_parent_up\{parent="b"\} 1/, 'state in /metrics');
  const panel = snapshot(proxy).parents;
  t.match(panel, [{ name: 'a', up: true, weight: 3, requests: na }, { name: 'b', up: true, weight: 1, requests: nb }], "the dashboard's parents panel data (/api/stats)");
  const records = readLog(proxy.logFile).filter((r) => r.event === 'request');
  t.ok(records.length > 0 && records.every((r) => r.parent === 'a' || r.parent === 'b'), 'each request record names its parent');
});

/** Open a tunnel through the proxy to `target`; resolves with the proxy's answer head and the socket. */
function tunnel(port: number, target: string): Promise<{ head: string; socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve({ head: buf.subarray(0, end).toString('latin1'), socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.setTimeout(15_000, () => socket.destroy(new Error('tunnel answer timed out')));
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** Echo `bytes` through an open tunnel to an echo server; resolves with what came back. */
function echoThrough(socket: net.Socket, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    socket.setTimeout(0);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes.length) resolve(Buffer.concat(chunks));
    });
    socket.write(bytes);
  });
}

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

t.test('least-conn: with long tunnels held on parent A, new connections go to B', async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const echo = await startOrigin();
  t.teardown(() => echo.close());
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},name=a`), parent(`http://127.0.0.1:${b.address.port},name=b`)], { parentSelect: 'least-conn', parentFor: ['localhost=a'] });
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const { head, socket } = await tunnel(proxy.address.port, `localhost:${echo.port}`); // pinned to a
    t.match(head, /^HTTP\/1.1 200/);
    held.push(socket);
  }
  t.equal(a.shared.stats.get('tunnels'), 3, 'three long tunnels held on a');
  for (let i = 0; i < 3; i++) {
    const { head, socket } = await tunnel(proxy.address.port, `127.0.0.1:${echo.port}`);
    t.match(head, /^HTTP\/1.1 200/);
    held.push(socket);
  }
  t.equal(b.shared.stats.get('tunnels'), 3, 'the three new tunnels all went to b');
  t.equal(a.shared.stats.get('tunnels'), 3, 'a kept its three');
  t.match(await metricsOf(proxy), /proxyd_parent_active_connections\{parent="a"\} 3/, 'active connections per parent in the metrics');
});

t.test('host-hash: the same host always reaches the same parent; removing a parent moves only its hosts', async (t) => {
  const parents = [await proxydParent(t), await proxydParent(t), await proxydParent(t)];
  const specs = parents.map((p, i) => parent(`http://127.0.0.1:${p.address.port},name=p${i}`));
  const hosts = Array.from({ length: 15 }, (_, i) => `127.0.0.${i + 2}`);
  async function mapping(proxy: TestProxy): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const host of hosts) {
      const before = parents.map((p) => p.shared.stats.get('requests'));
      await get(proxy.address.port, `http://${host}:${origin.port}/hello`, false); // the parent answers 502 or 200: either way it was asked
      const i = parents.findIndex((p, k) => p.shared.stats.get('requests') > before[k]!);
      out.set(host, i);
    }
    return out;
  }
  const all = await child(t, specs, { parentSelect: 'host-hash' });
  const first = await mapping(all);
  const second = await mapping(all);
  t.same([...second], [...first], 'every host reached the same parent twice');
  t.ok(new Set(first.values()).size >= 2, `the hosts are spread over the parents (${[...first.values()].join(',')})`);
  const without = await child(t, [specs[0]!, specs[2]!], { parentSelect: 'host-hash' });
  const after = await mapping(without);
  for (const host of hosts) {
    if (first.get(host) !== 1) t.equal(after.get(host), first.get(host), `${host} stays on p${first.get(host)}`);
    else t.not(after.get(host), 1, `${host} moved off the removed p1`);
  }
});

t.test('routing: --parent-for, --direct-for, --never-direct; forbidden literals never reach a parent', async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const dead = await freePort(); // nothing listens here
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},name=a`), parent(`http://127.0.0.1:${b.address.port},name=b`)], { parentFor: ['localhost=b'], directFor: ['direct.localhost'] });
  const url = (host: string): string => `http://${host}:${origin.port}/hello`;
  const [a0, b0] = [served(a), served(b)];
  for (let i = 0; i < 4; i++) t.equal((await get(proxy.address.port, url('localhost'), false)).status, 200);
  t.equal(served(b) - b0, 4, '--parent-for localhost=b: all four through b');
  t.equal(served(a), a0, '…none through a');
  t.equal((await get(proxy.address.port, url('127.0.0.1'), false)).status, 200);
  await eventually(() => served(a) + served(b) - a0 - b0 === 5, 'other hosts go through a parent');
  const asked = (): number => a.shared.stats.get('requests') + b.shared.stats.get('requests');
  const askedBefore = asked();
  const blocked = await get(proxy.address.port, 'http://169.254.169.254/latest/meta-data/', false);
  t.equal(blocked.status, 403, 'the metadata address is refused by proxyd itself');
  const spelled = await get(proxy.address.port, 'http://0xa9fea9fe/', false);
  t.equal(spelled.status, 403, '…in another spelling too');
  const tunnelled = await tunnel(proxy.address.port, '[::ffff:a9fe:a9fe]:443');
  tunnelled.socket.destroy();
  t.match(tunnelled.head, /^HTTP\/1.1 403/, 'CONNECT to the metadata address: 403 from proxyd');
  const self = await get(proxy.address.port, `http://127.0.0.1:${proxy.address.port}/`, false);
  t.equal(self.status, 403, 'the proxy itself: 403');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(asked(), askedBefore, 'no forbidden request reached a parent');

  const upgrade = await exchange(proxy.address.port, `GET ${url('127.0.0.1')} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  t.match(upgrade.text, /^HTTP\/1.1 502 [^]*X-Proxyd-Refusal: UPGRADE_NOT_VIA_PARENT/, 'an Upgrade routed to parents is refused, not sent direct');

  const deadParent = parent(`http://127.0.0.1:${dead},name=dead`);
  const direct = await child(t, [deadParent], { directFor: ['localhost'], parentDownAfter: 1, parentRetryMs: 60_000 });
  t.equal((await get(direct.address.port, url('localhost'), false)).status, 200, '--direct-for localhost: served direct though the parent is dead');
  t.equal((await get(direct.address.port, url('127.0.0.1'), false)).status, 200, 'without --never-direct, a request whose every parent fails goes direct…');
  t.equal((await get(direct.address.port, url('127.0.0.1'), false)).status, 200, '…and so do the next ones, the parent being down');
  const strict = await child(t, [deadParent], { neverDirect: true, parentDownAfter: 1, parentRetryMs: 60_000 });
  const first = await get(strict.address.port, url('127.0.0.1'), false);
  t.equal(first.status, 502, '--never-direct: the failed parent is a 502…');
  t.match(first.body, /parent dead/, '…naming it');
  const refused = await get(strict.address.port, url('127.0.0.1'), false);
  t.equal(refused.status, 502, '--never-direct: 502 once every parent is down');
  t.equal(refused.headers['x-proxyd-refusal'], 'PARENT_DOWN');
});

t.test('the options on the command line: check-config, bare --never-direct, one-line refusals, no password shown', async (t) => {
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, 'check-config', ...args], { encoding: 'utf8', timeout: 20_000 });
  const ok = run(['--parent', 'http://ops:T0pSecret@10.0.0.5:3128,weight=3,name=east', '--parent', 'https://10.0.0.6:3129', '--never-direct', '--parent-select', 'host-hash', '--parent-for', 'eu.example=east', '--direct-for', 'intranet.example']);
  t.equal(ok.status, 0, ok.stderr);
  const effective = JSON.parse(ok.stdout) as Record<string, unknown>;
  t.same(effective.parent, ['http://ops:***@10.0.0.5:3128,weight=3,name=east', 'https://10.0.0.6:3129,weight=1,name=10.0.0.6:3129']);
  t.equal(effective['never-direct'], 'on', 'a bare --never-direct is on');
  t.same(effective['parent-for'], ['eu.example=east']);
  t.notOk(ok.stdout.includes('T0pSecret') || ok.stderr.includes('T0pSecret'), 'the password is not printed');
  const bad: [string[], RegExp][] = [
    [['--parent-for', 'eu.example=west', '--parent', 'http://10.0.0.5:3128,name=east'], /^proxyd: --parent-for eu\.example=west names no --parent \(names: east\)\n$/],
    [['--never-direct'], /^proxyd: --never-direct needs at least one --parent\n$/],
    [['--parent', 'ftp://u:Hidden99@x:21'], /^proxyd: --parent: "ftp:\/\/u:\*\*\*@x:21" must be an http:\/\/ or https:\/\/ proxy URL\n$/],
    [['--parent', 'http://a:1,name=x', '--parent', 'http://b:1,name=x'], /names two parents "x"/],
    [['--parent-select', 'random'], /must be one of round-robin, least-conn, host-hash/],
  ];
  for (const [args, message] of bad) {
    const r = run(args);
    t.equal(r.status, 2, `exit 2: ${args.join(' ')}`);
    t.match(r.stderr, message);
    t.notOk(r.stderr.includes('Hidden99'), 'no password in the message');
  }
});

t.test('SIGHUP: selection and rules change live; the list of parents needs a restart', async (t) => {
  // The parents run as processes of their own: a reload's policy message goes to every serving thread
  // of this process (one BroadcastChannel name), and must not reach them.
  const a = await startCliProxy(t, ['--workers', '1', '--log-level', 'info']);
  const b = await startCliProxy(t, ['--workers', '1', '--log-level', 'info']);
  t.teardown(() => void a.child.kill('SIGKILL'));
  t.teardown(() => void b.child.kill('SIGKILL'));
  const served = (p: CliProxy): number => readLog(p.logFile).filter((r) => r.event === 'request').length;
  const specs = [parent(`http://127.0.0.1:${a.port},name=a`), parent(`http://127.0.0.1:${b.port},name=b`)];
  const proxy = await child(t, specs);
  const counts = async (n: number, throughParents = true): Promise<[number, number]> => {
    const [a0, b0] = [served(a), served(b)];
    for (let i = 0; i < n; i++) t.equal((await get(proxy.address.port, origin.url('/hello'), false)).status, 200);
    if (throughParents) await eventually(() => served(a) + served(b) - a0 - b0 === n, 'every request counted by its parent');
    else await new Promise((r) => setTimeout(r, 300)); // a parent's count would be in by now
    return [served(a) - a0, served(b) - b0];
  };
  t.same(await counts(4), [2, 2], 'round-robin: the same host alternates');
  await proxy.reload({ ...proxy.options, parentSelect: 'host-hash' });
  const hashed = await counts(6);
  t.ok(hashed.includes(6), `host-hash after the reload: one parent takes the host (${hashed.join(':')})`);
  await proxy.reload({ ...proxy.options, directFor: ['127.0.0.1'] });
  t.same(await counts(2, false), [0, 0], '--direct-for added by a reload: no parent asked');
  await proxy.reload({ ...proxy.options, directFor: [], parents: [specs[0]!] });
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload-needs-restart' && String(r.keys).includes('parent')), 'the list is reported as needing a restart');
  t.equal((await counts(4)).reduce((x, y) => x + y), 4, 'the running list is kept (both parents still used)');
});
