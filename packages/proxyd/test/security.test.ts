// Safe on a public host: who may use the proxy, where it may connect (every spelling of a forbidden
// address), authentication, loops, and HTTPS to the proxy. Every proxy here runs with the test guard:
// it dials loopback only, so a policy hole fails the test without a packet leaving the machine.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createDestinationPolicy } from '../src/policy/destination-policy.ts';
import { allowDestWarning } from '../src/primary/access.ts';
import { createClientAcl } from '../src/policy/client-acl.ts';
import { parseHtpasswd, verifyPassword } from '../src/policy/htpasswd.ts';
import { startOrigin } from './helpers/origin.ts';
import { startTlsOrigin } from './helpers/tls-origin.ts';
import { startTestProxy, readLog, tempDir } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { openTunnelClient } from './helpers/tunnel-client.ts';
import { eventually } from './helpers/proxy.ts';

const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('destination policy: every spelling of a forbidden address is the same address', async (t) => {
  const policy = createDestinationPolicy({ allowDest: [], ownPorts: [8080], localAddresses: ['10.1.2.3'] });
  const cases: [string, number, RegExp | undefined][] = [
    ['169.254.169.254', 80, /cloud-metadata/],
    ['::ffff:169.254.169.254', 80, /cloud-metadata/],
    ['::ffff:a9fe:a9fe', 80, /cloud-metadata/],
    ['fd00:ec2::254', 80, /cloud-metadata/],
    ['FD00:EC2:0:0::254', 80, /cloud-metadata/],
    ['169.254.170.2', 80, /cloud-metadata/],
    ['100.100.100.200', 80, /cloud-metadata/],
    ['169.254.1.1', 80, /link-local/],
    ['fe80::1', 443, /link-local/],
    ['0.0.0.0', 80, /unspecified/],
    ['::', 80, /unspecified/],
    ['224.0.0.1', 80, /multicast/],
    ['127.0.0.1', 80, /loopback/],
    ['127.9.9.9', 80, /loopback/],
    ['::1', 80, /loopback/],
    ['::ffff:127.0.0.1', 80, /loopback/],
    ['10.1.2.3', 8080, /proxy-itself/],
    ['10.1.2.3', 80, undefined],
    ['192.168.1.10', 443, undefined],
    ['93.184.215.14', 443, undefined],
  ];
  for (const [address, port, rule] of cases) {
    const got = policy.check(address, port);
    if (rule) t.match(got, rule, `${address}:${port} → ${got}`);
    else t.equal(got, undefined, `${address}:${port} allowed`);
  }
  const loose = createDestinationPolicy({ allowDest: ['127.0.0.0/8', '169.254.0.0/16'], ownPorts: [8080], localAddresses: [] });
  t.equal(loose.check('127.0.0.1', 80), undefined, '--allow-dest 127.0.0.0/8 opens loopback');
  t.match(loose.check('169.254.169.254', 80), /cloud-metadata/, '--allow-dest never opens cloud metadata');
  t.match(loose.check('127.0.0.1', 8080), /proxy-itself/, 'nor the proxy itself');
  t.equal(loose.check('::1', 80), 'loopback (allow with --allow-dest ::1/128)', 'IPv6 loopback stays closed, and the advice names its own range');
  t.equal(createDestinationPolicy({ allowDest: [], ownPorts: [], localAddresses: [] }).check('127.0.0.5', 80), 'loopback (allow with --allow-dest 127.0.0.0/8)');
});

t.test('--allow-dest ranges with no loopback in them change nothing: a warning names them (not a refusal)', async (t) => {
  for (const cidr of ['127.0.0.0/8', '127.0.0.5', '::1', '::1/128', '0.0.0.0/0', '::/0', '126.0.0.0/7', '::ffff:127.0.0.1']) t.equal(allowDestWarning([cidr]), undefined, `${cidr} opens loopback`);
  const warning = allowDestWarning(['127.0.0.0/8', '10.0.0.0/8', '8.8.8.8/32']);
  t.match(warning, /^--allow-dest 10\.0\.0\.0\/8, 8\.8\.8\.8\/32: no loopback address in them, so they change nothing\./);
  t.match(allowDestWarning(['fe80::/10']), /^--allow-dest fe80::\/10: no loopback address in it, so it changes nothing\. --allow-dest only opens loopback/);
});

t.test('client ACL: loopback and private ranges by default; --allow-client widens; auth opens', async (t) => {
  const def = createClientAcl([], false);
  for (const a of ['127.0.0.1', '::1', '10.0.0.7', '172.20.1.1', '192.168.0.9', 'fd12::1', '::ffff:192.168.0.9']) t.ok(def.allows(a), `${a} allowed`);
  for (const a of ['203.0.113.7', '8.8.8.8', '2001:db8::1', '::ffff:203.0.113.7', undefined]) t.notOk(def.allows(a), `${a} refused`);
  t.notOk(def.open);
  const wider = createClientAcl(['203.0.113.0/24'], false);
  t.ok(wider.allows('203.0.113.7'));
  t.notOk(wider.allows('198.51.100.1'));
  t.ok(createClientAcl(['any'], false).allows('198.51.100.1'));
  t.ok(createClientAcl([], true).allows('198.51.100.1'), 'with authentication, any address may try');
  t.throws(() => createClientAcl(['not-a-cidr'], false), /--allow-client: "not-a-cidr" is not an IP address/);
});

t.test('end to end: forbidden destinations are refused with 403 naming the rule, in every spelling', async (t) => {
  // No --allow-dest here: loopback is forbidden too, which is what lets these run without a network.
  const proxy = await startTestProxy(t, { allowDest: [], connectPorts: [[1, 65535]], workers: 1 });
  t.teardown(() => proxy.close(500));
  const urls: [string, RegExp][] = [
    ['http://169.254.169.254/latest/meta-data/', /cloud-metadata/],
    ['http://[::ffff:169.254.169.254]/', /cloud-metadata/],
    ['http://[::ffff:a9fe:a9fe]/', /cloud-metadata/],
    ['http://2852039166/', /cloud-metadata/], // decimal
    ['http://0251.0376.0251.0376/', /cloud-metadata/], // octal
    ['http://0xa9fea9fe/', /cloud-metadata/], // hex
    ['http://[fd00:ec2::254]/', /cloud-metadata/],
    ['http://169.254.170.2/v2/credentials', /cloud-metadata/],
    ['http://100.100.100.200/', /cloud-metadata/],
    ['http://0.0.0.0/', /unspecified/],
    ['http://[::]/', /unspecified/],
    ['http://127.0.0.1/', /loopback/],
    ['http://localhost/', /loopback/], // a name: refused on the address it resolves to
    [`http://127.0.0.1:${origin.port}/hello`, /loopback/],
  ];
  for (const [url, rule] of urls) {
    const r = await curl(['--proxy', proxy.url, url]);
    t.equal(r.status, 403, `${url} → 403`);
    t.match(r.body.toString(), rule, `${url}: ${r.body.toString().trim()}`);
  }
  // The same through CONNECT, with a decimal spelling that only resolution turns into the address.
  for (const target of ['169.254.169.254:443', '[::ffff:a9fe:a9fe]:443', '2852039166:443', 'localhost:443']) {
    const c = openTunnelClient(proxy.address.port, target, target);
    await eventually(() => c.head !== undefined, `answer to CONNECT ${target}`);
    c.socket.destroy();
    t.match(c.head, /^HTTP\/1\.1 403 /, `CONNECT ${target} → 403`);
  }
  t.equal(origin.seen.filter((r) => r.url === '/hello').length, 0, 'the origin on loopback was never reached');
  await proxy.close(500);
  const blocked = readLog(proxy.logFile).filter((r) => r.event === 'blocked');
  t.equal(blocked.length, urls.length + 4, 'each refusal is logged once');
  t.ok(blocked.every((r) => typeof r.rule === 'string' && !String(r.rule).startsWith('test-guard')), 'refused by the policy itself, not by the test guard');
});

t.test('loops: to the proxy itself, or carrying our own Via token, are refused', async (t) => {
  const proxy = await startTestProxy(t, { workers: 1 });
  t.teardown(() => proxy.close(500));
  const self = await curl(['--proxy', proxy.url, `${proxy.url}/`]);
  t.equal(self.status, 403);
  t.match(self.body.toString(), /proxy-itself/);
  const ok = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  const token = /^via: 1\.1 (proxyd-[0-9a-f]+)/im.exec(ok.headers)![1]!;
  const looped = await curl(['--proxy', proxy.url, '-H', `Via: 1.1 other, 1.1 ${token}`, origin.url('/hello')]);
  t.equal(looped.status, 403);
  t.match(looped.headers, /X-Proxyd-Refusal: LOOP_DETECTED/);
  const otherProxy = await curl(['--proxy', proxy.url, '-H', 'Via: 1.1 proxyd-00000000', origin.url('/hello')]);
  t.equal(otherProxy.status, 200, "another proxyd's token is not a loop");
});

t.test('plain HTTP to dangerous ports is refused; CONNECT only to --connect-ports', async (t) => {
  const proxy = await startTestProxy(t, { workers: 1, connectPorts: [[443, 443]] });
  t.teardown(() => proxy.close(500));
  for (const port of [25, 22, 587]) {
    const r = await curl(['--proxy', proxy.url, `http://127.0.0.1:${port}/`]);
    t.equal(r.status, 403, `HTTP to port ${port} → 403`);
    t.match(r.headers, /X-Proxyd-Refusal: BLOCKED_PORT/);
  }
  const c = openTunnelClient(proxy.address.port, `127.0.0.1:${origin.port}`, 'c');
  await eventually(() => c.head !== undefined, 'answer');
  c.socket.destroy();
  t.match(c.head, /403 Forbidden[\s\S]*BLOCKED_PORT/);
});

t.test('proxy authentication with an htpasswd file', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'htpasswd');
  writeFileSync(file, [`# users`, `alice:${bcrypt.hashSync('wonderland', 4).replace(/^\$2b\$/, '$2y$')}`, 'bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g='].join('\n'));
  t.ok(await verifyPassword('password', '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g='), 'SHA entry checks');
  t.throws(() => parseHtpasswd('carol:plaintext\n'), /unsupported hash/);
  const tlsOrigin = await startTlsOrigin();
  const proxy = await startTestProxy(t, { workers: 1, authFile: file, connectPorts: [[1, 65535]] });
  t.teardown(async () => {
    await proxy.close(500);
    await tlsOrigin.close();
  });

  const missing = await curl(['--proxy', proxy.url, origin.url('/hello')]);
  t.equal(missing.status, 407);
  t.match(missing.headers, /Proxy-Authenticate: Basic realm="proxyd"/);
  const wrong = await curl(['--proxy', proxy.url, '--proxy-user', 'alice:queen-of-hearts', origin.url('/hello')]);
  t.equal(wrong.status, 407);
  const good = await curl(['--proxy', proxy.url, '--proxy-user', 'alice:wonderland', origin.url('/headers')]);
  t.equal(good.status, 200, 'bcrypt ($2y$) user gets through');
  t.notMatch(good.body.toString(), /proxy-authorization/i, 'credentials are not forwarded upstream');
  t.equal((await curl(['--proxy', proxy.url, '--proxy-user', 'bob:password', origin.url('/hello')])).status, 200, '{SHA} user gets through');
  const https = await curl(['--proxy', proxy.url, '--proxy-user', 'alice:wonderland', '--cacert', tlsOrigin.caFile, `https://127.0.0.1:${tlsOrigin.port}/`]);
  t.equal(https.status, 200, 'CONNECT with credentials');
  const httpsNoAuth = await curl(['--proxy', proxy.url, '--cacert', tlsOrigin.caFile, `https://127.0.0.1:${tlsOrigin.port}/`]);
  t.match(httpsNoAuth.headers, /407 Proxy Authentication Required/, 'CONNECT without credentials → 407');

  // Repeated failures from one address are throttled.
  let throttled = 0;
  for (let i = 0; i < 15; i++) {
    const r = await curl(['--proxy', proxy.url, '--proxy-user', `mallory:guess${i}`, origin.url('/hello')]);
    if (r.status === 429) throttled++;
  }
  t.ok(throttled >= 4, `after 10 failures the address is throttled (${throttled} of 15 answered 429)`);
  t.equal((await curl(['--proxy', proxy.url, '--proxy-user', 'alice:wonderland', origin.url('/hello')])).status, 429, 'even good credentials wait out the window');

  await proxy.close(500);
  const text = readLog(proxy.logFile).map((r) => JSON.stringify(r)).join('\n');
  t.notMatch(text, /wonderland|queen-of-hearts|guess1/, 'no password ever reaches the log');
  t.notMatch(text, /YWxpY2U6/, 'nor the encoded credentials');
  t.match(text, /"event":"auth-failed"/);
});

t.test('HTTPS to the proxy: --tls-cert/--tls-key, TLS terminated in the worker', async (t) => {
  const certs = await startTlsOrigin(); // reuse its openssl-made certificate for the proxy
  await certs.close();
  const dir = certs.caFile.replace(/\/cert\.pem$/, '');
  for (const workers of [1, 0]) {
    const proxy = await startTestProxy(t, { workers, tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') });
    const url = `https://127.0.0.1:${proxy.address.port}`;
    const r = await curl(['--proxy', url, '--proxy-cacert', certs.caFile, origin.url('/hello')]);
    t.equal(r.status, 200, `curl --proxy https://… works (workers ${workers})`);
    t.equal(r.body.toString(), 'hello from origin\n');
    const plain = await curl(['--proxy', `http://127.0.0.1:${proxy.address.port}`, origin.url('/hello')], 5000);
    t.not(plain.status, 200, 'plain HTTP to the TLS listener does not work');
    await proxy.close(500);
    t.ok(readLog(proxy.logFile).some((r) => r.event === 'tls-error'), 'the failed handshake is logged');
  }
});
