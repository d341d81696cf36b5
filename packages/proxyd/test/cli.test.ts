// The proxyd command itself: --help, bad flags, the runtime check, and a clean SIGTERM that loses no
// log record.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { startOrigin } from './helpers/origin.ts';
import { DEFAULTS } from '../src/config/options.ts';
import { BIN, startCliProxy, readLog, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

function run(args: string[], execPath = process.execPath) {
  return spawnSync(execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

t.test('--help explains every flag with its default', async (t) => {
  const r = run(['--help']);
  t.equal(r.status, 0);
  for (const flag of ['--host', '--port', '--workers', '--max-clients', '--max-waiting', '--queue-timeout', '--idle-timeout', '--upstream-timeout', '--headers-timeout', '--connect-ports', '--blocked-http-ports', '--allow-client', '--allow-dest', '--auth-file', '--auth-realm', '--tls-cert', '--tls-key', '--max-header-size', '--max-url-length', '--blocklist', '--log-file', '--log-level', '--shutdown-grace', '--status-interval']) {
    t.match(r.stdout, flag, `${flag} is explained`);
  }
  t.match(r.stdout, `[default: "${DEFAULTS.port}"]`, 'defaults are shown');
});

t.test('a bad value or an unknown flag is one clear line and exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--port', 'abc'], /--port must be a whole number from 0 to 65535, got "abc"/],
    [['--workers', '-1'], /--workers must be a whole number/],
    [['--queue-timeout', 'soon'], /--queue-timeout: "soon" is not a duration/],
    [['--connect-ports', '443,99999'], /--connect-ports: "99999" is not a port/],
    [['--log-level', 'loud'], /Invalid values[\s\S]*log-level/],
    [['--no-such-flag'], /Unknown argument/],
  ];
  for (const [args, expected] of cases) {
    const r = run(args);
    t.equal(r.status, 2, `${args.join(' ')} exits 2`);
    t.match(r.stderr, expected, `${args.join(' ')}: ${r.stderr.split('\n')[0]}`);
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  const missing = run(['--blocklist', '/nonexistent/blocklist.txt', '--port', '0']);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /blocklist \/nonexistent\/blocklist\.txt: no such file/);
});

// The machine's own Node.js (20 on a fresh machine), found on the system PATH rather than the pinned one.
const systemNode = spawnSync('/usr/bin/env', ['PATH=/usr/local/bin:/usr/bin:/bin', 'node', '--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const systemNodeIsOld = /^v(?:2[0-3]|25)\.|^v24\.1?\d\.|^v26\.[0-4]\./.test(systemNode);

t.test('on an old Node.js, proxyd prints one line saying what it needs and exits 1', { skip: systemNodeIsOld ? false : `the system Node.js (${systemNode || 'none'}) is not an old one` }, async (t) => {
  const old = spawnSync('/usr/bin/env', ['PATH=/usr/local/bin:/usr/bin:/bin', 'node', BIN, '--help'], { encoding: 'utf8' });
  t.equal(old.status, 1);
  t.match(old.stderr, /^proxyd needs Node\.js >= 24\.20 .* transfer|hand an accepted socket to a worker thread/);
  t.equal(old.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('SIGTERM: stop accepting, finish, flush every log record, exit 0', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '2', '--log-level', 'info']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const N = 40;
  const results = await Promise.all(Array.from({ length: N }, (_, i) => curl(['--proxy', proxy.url, origin.url(`/hello?n=${i}`)])));
  t.same(results.map((r) => r.status), Array(N).fill(200));
  const code = await proxy.stop('SIGTERM');
  t.equal(code, 0, 'exit code 0');
  const logged = readLog(proxy.logFile).filter((r) => r.event === 'request' && String(r.url).includes('/hello?n='));
  t.equal(logged.length, N, `all ${N} requests are in the log file`);
  t.ok(readLog(proxy.logFile).some((r) => r.event === 'stopped'), 'the last record says it stopped');
  t.match(proxy.stdout(), /proxyd listening on http:\/\/127\.0\.0\.1:\d+/, 'says where it listens');
  t.match(proxy.stdout(), /SIGTERM: draining/);
});

t.test('SIGTERM with a tunnel still open: closed at the grace deadline, logged, still exit 0', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '1', '--shutdown-grace', '300ms', '--connect-ports', '1-65535']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const { openTunnelClient } = await import('./helpers/tunnel-client.ts');
  const holder = openTunnelClient(proxy.port, `127.0.0.1:${origin.port}`, 'holder');
  await eventually(() => holder.head !== undefined, 'the tunnel is open');
  t.match(holder.head, /200 Connection Established/);
  const started = Date.now();
  const code = await proxy.stop('SIGTERM');
  t.equal(code, 0);
  t.ok(Date.now() - started < 10_000, 'did not wait past the grace period');
  const records = readLog(proxy.logFile);
  const stopped = records.find((r) => r.event === 'stopped');
  t.equal(stopped?.closedAtDeadline, 1, 'one connection was closed at the deadline, and counted');
  t.ok(records.some((r) => r.event === 'tunnel' && r.target === `127.0.0.1:${origin.port}`), 'the tunnel closed at the deadline is in the log');
  holder.socket.destroy();
});

t.test('SIGHUP reloads the blocklist through the CLI', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tempDir } = await import('./helpers/proxy.ts');
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const file = join(tempDir(), 'block.txt');
  writeFileSync(file, '# nothing yet\n');
  const proxy = await startCliProxy(t, ['--workers', '1', '--blocklist', file]);
  t.teardown(() => proxy.stop('SIGKILL'));
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200);
  writeFileSync(file, '127.0.0.1\n');
  proxy.child.kill('SIGHUP');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload'), 'reload logged');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'policy-applied' || r.event === 'reload'), 'applied');
  let status = 0;
  for (let i = 0; i < 50 && status !== 403; i++) status = (await curl(['--proxy', proxy.url, origin.url('/hello')])).status;
  t.equal(status, 403, 'blocked after SIGHUP');
  t.equal(await proxy.stop('SIGTERM'), 0);
});
