// The config file and live reload, through the real CLI: defaults < file < flags; one clear line and
// exit 2 for a bad file; SIGHUP applies what can change live and reports what needs a restart.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOrigin } from './helpers/origin.ts';
import { DEFAULTS } from '../src/config/options.ts';
import { formatDuration } from '../src/config/duration.ts';
import { BIN, startCliProxy, readLog, eventually, tempDir } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { effectiveOptions } from '../src/config/command-line.ts';

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

function configFile(content: unknown): string {
  const file = join(tempDir(), 'proxyd.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

t.test('check-config prints the effective options under the config file\'s own keys: defaults < file < flags', async (t) => {
  const file = configFile({ 'max-clients': 64, 'queue-timeout': '10s', 'allow-client': ['203.0.113.0/24'], 'connect-ports': '443,8443', port: 9000 });
  const r = run(['check-config', '--config', file, '--port', '9001']);
  t.equal(r.status, 0, r.stderr);
  const options = JSON.parse(r.stdout) as Record<string, unknown>;
  t.equal(options['max-clients'], 64, 'from the file');
  t.equal(options['queue-timeout'], '10s', 'from the file, written as a duration');
  t.equal(options['connect-ports'], '443,8443', 'a port list as the file writes it');
  t.same(options['allow-client'], ['203.0.113.0/24']);
  t.equal(options.port, 9001, 'the flag overrides the file');
  t.equal(options['idle-timeout'], formatDuration(DEFAULTS.idleTimeoutMs), 'the default where neither says');
  t.equal(options['blocked-http-ports'], '19,21-23,25,110,119,143,465,587,993,995');
  t.equal(options.admin, '127.0.0.1:9090');
  t.equal(options['auth-file'], '', 'an unset file as "", which a config file reads as unset');
  for (const internal of ['queueTimeoutMs', 'connectPorts', 'maxClients', 'logRingBytes']) t.notOk(internal in options, `no internal name ${internal}`);
  t.equal(r.stderr, `proxyd: configuration OK (${file} + flags)\n`, 'the verdict on stderr, so stdout is the JSON alone');
});

t.test('check-config reads every file start-up reads: the example config fails as start-up does', async (t) => {
  const example = new URL('../../../config/proxyd.example.json', import.meta.url).pathname;
  const installed = existsSync('/etc/proxyd/blocklist.txt');
  t.test('as shipped, naming /etc/proxyd/blocklist.txt', { skip: installed ? '/etc/proxyd/blocklist.txt exists on this machine' : false }, async (t) => {
    const check = run(['check-config', '--config', example]);
    // Start-up fails at the blocklist, before it listens on the example's 0.0.0.0:8080.
    const start = run(['--config', example, '--admin', 'off', '--log-file', join(tempDir(), 'proxy.log')]);
    for (const [what, r] of [['check-config', check], ['start-up', start]] as const) {
      t.equal(r.status, 2, `${what}: exit 2`);
      t.equal(r.stderr, 'proxyd: blocklist /etc/proxyd/blocklist.txt: no such file\n', `${what}: the same one line`);
      t.equal(r.stdout, '', `${what}: nothing on stdout`);
    }
  });
  t.test('with the blocklist it names present, and an auth file: OK, saying what it read', async (t) => {
    const dir = tempDir();
    const blocklist = join(dir, 'blocklist.txt');
    writeFileSync(blocklist, 'example.com\nads.example.net\n');
    const users = join(dir, 'users');
    writeFileSync(users, `alice:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`);
    const file = configFile({ ...(JSON.parse(readFileSync(example, 'utf8')) as object), blocklist, 'auth-file': users });
    const r = run(['check-config', '--config', file]);
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stderr, `proxyd: configuration OK (${file} + flags; read blocklist ${blocklist} (2 domains), auth file ${users} (1 user))\n`);
    t.equal(JSON.parse(r.stdout).host, '0.0.0.0');
  });
});

t.test('round trip: check-config\'s output, saved, is a config file that gives the same options', async (t) => {
  const dir = tempDir();
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const blocklist = join(dir, 'blocklist.txt');
  writeFileSync(blocklist, 'example.com\n');
  const users = join(dir, 'users');
  writeFileSync(users, `bob:{SHA}${createHash('sha1').update('pw').digest('base64')}\n`);
  // Something other than the default for every kind of value: counts, durations (zero too), port lists
  // ("none" too), lists, an address and "off", text, files, a choice.
  const original = configFile({
    host: '::1', port: 3128, workers: 0, 'max-clients': 7, 'queue-timeout': 1.5, 'idle-timeout': '90s', 'shutdown-grace': 0,
    'connect-ports': '443,8443,9000-9099', 'blocked-http-ports': 'none', 'allow-client': '10.0.0.0/8,any', 'allow-dest': ['127.0.0.0/8', '::1'],
    'auth-file': users, 'auth-realm': 'a "quoted" realm', 'tls-cert': cert, 'tls-key': key, blocklist, 'log-level': 'debug', 'log-max-size': 0,
  });
  const flags = ['--admin', 'off', '--status-interval', '1h'];
  const first = run(['check-config', '--config', original, ...flags]);
  t.equal(first.status, 0, first.stderr);
  const saved = join(dir, 'saved.json');
  writeFileSync(saved, first.stdout);

  const second = run(['check-config', '--config', saved]);
  t.equal(second.status, 0, second.stderr);
  t.equal(second.stdout, first.stdout, 'the saved file, checked without the flags, prints the same');
  t.same(effectiveOptions({ configFile: saved, flags: {} }), effectiveOptions({ configFile: original, flags: { admin: 'off', 'status-interval': '1h' } }), 'and gives the same options');
  const printed = JSON.parse(first.stdout) as Record<string, unknown>;
  t.match(printed, { 'queue-timeout': '1500ms', 'shutdown-grace': '0s', 'blocked-http-ports': 'none', admin: 'off', 'auth-realm': 'a quoted realm', 'log-max-size': 0, 'status-interval': '1h' });

  // And start-up takes the saved file: the proxy really runs with it (TLS and all).
  const proxy = await startCliProxy(t, ['--config', saved, '--workers', '1']);
  t.teardown(() => proxy.stop('SIGKILL'));
  t.match(proxy.stdout(), /listening on https:\/\/127\.0\.0\.1:\d+ — 1 worker thread,/);
  t.equal(await proxy.stop('SIGTERM'), 0);
});

t.test('a bad config file is one line naming the key, and exit 2 — never a half-started proxy', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ 'max-clientz': 1 }, /unknown key "max-clientz"/],
    [{ port: true }, /key "port" must be a string or a number/],
    [{ 'allow-client': 5 }, /key "allow-client" must be a string or a list of strings/],
    [{ 'max-clients': 0 }, /key "max-clients" must be a whole number from 1/],
    [{ 'idle-timeout': 'forever' }, /key "idle-timeout": "forever" is not a duration/],
    [{ 'allow-dest': ['nonsense'] }, /key "allow-dest": "nonsense" is not an IP address/],
    ['{ not json', /not valid JSON/],
    ['[1, 2]', /must be a JSON object/],
  ];
  for (const [content, expected] of cases) {
    const file = configFile(content);
    const r = run(['--config', file, '--port', '0']);
    t.equal(r.status, 2, `${JSON.stringify(content)} → exit 2`);
    t.match(r.stderr, expected, r.stderr.split('\n')[0]!);
    t.equal(r.stdout, '', 'nothing started');
  }
  const missing = run(['--config', '/nonexistent/proxyd.json']);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /config \/nonexistent\/proxyd\.json: no such file/);
});

t.test('SIGHUP reloads the config file: live options change for new requests, others are reported', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const file = configFile({ 'allow-dest': ['127.0.0.0/8'], 'log-level': 'info', workers: 2 });
  const proxy = await startCliProxy(t, ['--config', file], {}, { allowLoopback: false });
  t.teardown(() => proxy.stop('SIGKILL'));
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200);

  // Take loopback away (live) and change the worker count (restart only).
  writeFileSync(file, JSON.stringify({ 'allow-dest': [], 'log-level': 'debug', workers: 3 }));
  proxy.child.kill('SIGHUP');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload'), 'reload logged');
  const reload = readLog(proxy.logFile).find((r) => r.event === 'reload')!;
  t.match(reload.changed, /allow-dest/);
  t.match(reload.changed, /log-level/);
  const restart = readLog(proxy.logFile).find((r) => r.event === 'reload-needs-restart');
  t.match(restart?.keys, /workers/, 'the worker count needs a restart, and the log says so');
  let status = 0;
  for (let i = 0; i < 50 && status !== 403; i++) status = (await curl(['--proxy', proxy.url, origin.url('/hello')])).status;
  t.equal(status, 403, 'loopback is now forbidden for new requests');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'accepted'), 'debug records appear after the level changed');

  // A broken file keeps everything running as it was.
  writeFileSync(file, '{ "allow-dest": [');
  proxy.child.kill('SIGHUP');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'reload-failed'), 'failed reload logged');
  t.match(readLog(proxy.logFile).find((r) => r.event === 'reload-failed')!.error, /not valid JSON/);
  t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 403, 'still the last good configuration');
  t.equal(await proxy.stop('SIGTERM'), 0);
});

t.test('the log file rotates at --log-max-size without losing a record', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startCliProxy(t, ['--workers', '1', '--log-max-size', '4096', '--log-max-files', '50', '--log-level', 'info']);
  t.teardown(() => proxy.stop('SIGKILL'));
  const N = 120;
  for (let i = 0; i < N; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => curl(['--proxy', proxy.url, origin.url(`/hello?n=${i + k}`)])));
  }
  t.equal(await proxy.stop('SIGTERM'), 0);
  const { readdirSync } = await import('node:fs');
  const { dirname, basename } = await import('node:path');
  const dir = dirname(proxy.logFile);
  const stem = basename(proxy.logFile, '.log');
  const files = readdirSync(dir).filter((f) => new RegExp(`^${stem}\\d*\\.log$`).test(f)); // proxy.log, proxy1.log, …
  t.ok(files.length > 3, `rotated into ${files.length} files`);
  const seen = new Set<string>();
  for (const f of files) for (const r of readLog(join(dir, f))) if (r.event === 'request') seen.add(String(r.url));
  t.equal(seen.size, N, `all ${N} request records are in the rotated files together`);
});
