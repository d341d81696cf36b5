// The config file and live reload, through the real CLI: defaults < file < flags; one clear line and
// exit 2 for a bad file; SIGHUP applies what can change live and reports what needs a restart.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOrigin } from './helpers/origin.ts';
import { DEFAULTS } from '../src/config/options.ts';
import { BIN, startCliProxy, readLog, eventually, tempDir } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

function configFile(content: unknown): string {
  const file = join(tempDir(), 'proxyd.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

t.test('check-config prints the effective options: defaults < file < flags', async (t) => {
  const file = configFile({ 'max-clients': 64, 'queue-timeout': '10s', 'allow-client': ['203.0.113.0/24'], port: 9000 });
  const r = run(['check-config', '--config', file, '--port', '9001']);
  t.equal(r.status, 0, r.stderr);
  const options = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('}') + 1));
  t.equal(options.maxClients, 64, 'from the file');
  t.equal(options.queueTimeoutMs, 10_000, 'from the file, parsed');
  t.same(options.allowClient, ['203.0.113.0/24']);
  t.equal(options.port, 9001, 'the flag overrides the file');
  t.equal(options.idleTimeoutMs, DEFAULTS.idleTimeoutMs, 'the default where neither says');
  t.match(r.stdout, /configuration OK/);
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
