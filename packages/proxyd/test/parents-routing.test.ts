// Parent proxies (issue 19), routing and configuration: --parent-for, --direct-for, --never-direct,
// policy before any parent, the options on the command line, and SIGHUP.
import t from 'tap';
import { keepAlive, parent, get, served, child, proxydParent, tunnel } from './helpers/parents.ts';
import { BIN, eventually, readLog, startCliProxy, type CliProxy } from './helpers/proxy.ts';
import { spawnSync } from 'node:child_process';
import { exchange } from './helpers/raw.ts';
import { startOrigin } from './helpers/origin.ts';
import { freePort } from './helpers/haproxy.ts';

t.setTimeout(300_000); // real proxies as parents, on a shared 2-core machine
t.teardown(() => keepAlive.destroy());
const origin = await startOrigin();
t.teardown(() => origin.close());

t.test('routing: --parent-for, --direct-for, --never-direct; forbidden literals never reach a parent', async (t) => {
  const a = await proxydParent(t);
  const b = await proxydParent(t);
  const dead = await freePort(); // nothing listens here
  const proxy = await child(t, [parent(`http://127.0.0.1:${a.address.port},name=a`), parent(`http://127.0.0.1:${b.address.port},name=b`)], { parentFor: ['localhost=b'], directFor: ['direct.localhost'] });
  const url = (host: string): string => `http://${host}:${origin.port}/hello`;
  const [a0, b0] = [served(a), served(b)];
  for (let i = 0; i < 4; i++) t.equal((await get(proxy.address.port, url('localhost'), false)).status, 200);
  // A parent counts a request when its answer has ended on its side, which can be a moment after our client has it.
  await eventually(() => served(b) - b0 === 4, '--parent-for localhost=b: all four through b');
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
