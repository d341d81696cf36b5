// The service install: scripts/install-service.sh into a staging root (--destdir), checked file by
// file; the installed copy really runs; the unit passes systemd-analyze verify; uninstall keeps the
// operator's files.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOrigin } from './helpers/origin.ts';
import { tempDir, readLog } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';

const REPO = new URL('../../../', import.meta.url).pathname;
const SCRIPT = join(REPO, 'scripts/install-service.sh');

t.test('install-service.sh into a staging root: files, idempotence, a working copy, uninstall', async (t) => {
  const root = tempDir();
  const install = (...args: string[]) => execFileSync('bash', [SCRIPT, '--destdir', root, ...args], { encoding: 'utf8' });
  const first = install();
  t.match(first, /wrote .*\/etc\/proxyd\/proxyd\.json/);
  const unit = readFileSync(join(root, 'etc/systemd/system/proxyd.service'), 'utf8');
  t.match(unit, /^ExecStart=\/opt\/proxyd\/bin\/node \/opt\/proxyd\/packages\/proxyd\/bin\/proxyd\.js --config \/etc\/proxyd\/proxyd\.json$/m);
  t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  t.match(unit, /^Restart=always$/m);
  t.match(unit, /^DynamicUser=yes$/m);
  t.match(unit, /^LimitNOFILE=65536$/m);
  t.match(unit, /^CapabilityBoundingSet=$/m);
  t.match(unit, /^TimeoutStopSec=20$/m);
  t.ok(existsSync(join(root, 'etc/proxyd/blocklist.txt')), 'a default blocklist');
  t.ok(existsSync(join(root, 'opt/proxyd/bin/node')), 'the Node.js runtime comes along, linked as bin/node');

  // The operator's config survives a second run.
  const config = join(root, 'etc/proxyd/proxyd.json');
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const logFile = join(root, 'var/log/proxyd/proxy.log');
  // admin on a port of its own: 9090 may be taken by whatever else runs on this machine
  writeFileSync(config, JSON.stringify({ host: '127.0.0.1', port: 0, admin: '127.0.0.1:0', workers: 1, 'allow-dest': ['127.0.0.0/8'], 'log-file': logFile, blocklist: join(root, 'etc/proxyd/blocklist.txt') }));
  const second = install();
  t.notMatch(second, /wrote .*proxyd\.json/, 'not rewritten');
  t.match(readFileSync(config, 'utf8'), /"port":0/, "the operator's edits are kept");

  // The installed copy runs on its own runtime, from its own tree.
  const node = join(root, 'opt/proxyd/bin/node'); // the binary itself: the signals below reach proxyd
  const bin = join(root, 'opt/proxyd/packages/proxyd/bin/proxyd.js');
  const check = spawnSync(node, [bin, 'check-config', '--config', config], { encoding: 'utf8' });
  t.equal(check.status, 0, check.stderr);
  const { spawn } = await import('node:child_process');
  const child = spawn(node, [bin, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PROXYD_TEST_HOOKS: '1' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(() => void child.kill('SIGKILL'));
  const deadline = Date.now() + 20_000;
  while (!/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  t.ok(port > 0, 'the installed proxyd started');
  const r = await curl(['--proxy', `http://127.0.0.1:${port}`, origin.url('/hello')]);
  t.equal(r.status, 200, 'and serves');
  const facebook = await curl(['--proxy', `http://127.0.0.1:${port}`, 'http://www.facebook.com/']);
  t.equal(facebook.status, 403, 'with the default blocklist in force');
  child.kill('SIGTERM');
  await exited;
  t.ok(readLog(logFile).some((rec) => rec.event === 'request'), 'logging to the configured file');

  const removed = execFileSync('bash', [SCRIPT, '--destdir', root, '--uninstall'], { encoding: 'utf8' });
  t.match(removed, /kept/);
  t.notOk(existsSync(join(root, 'opt/proxyd')), 'the code is gone');
  t.notOk(existsSync(join(root, 'etc/systemd/system/proxyd.service')), 'the unit is gone');
  t.ok(existsSync(config), 'the config is kept');
  t.ok(existsSync(logFile), 'the logs are kept');
  const bad = spawnSync('bash', [SCRIPT, '--frobnicate'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown option --frobnicate/);
});

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
t.test('the unit passes systemd-analyze verify; its exposure score stays low', { skip: analyze.status === 0 ? false : 'systemd-analyze is not installed' }, async (t) => {
  const dir = tempDir();
  // verify checks that ExecStart exists: point it at this checkout's runtime and entry point.
  const unit = readFileSync(join(REPO, 'systemd/proxyd.service'), 'utf8')
    .replace('/opt/proxyd/bin/node', process.execPath)
    .replace(/\/opt\/proxyd/g, REPO.replace(/\/$/, ''));
  const file = join(dir, 'proxyd.service');
  writeFileSync(file, unit);
  const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr.trim() || 'clean'}`);
  const security = spawnSync('systemd-analyze', ['security', '--offline=yes', file], { encoding: 'utf8' });
  const score = Number(/Overall exposure level for proxyd\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
  t.ok(score > 0 && score <= 2.0, `systemd-analyze security: exposure ${score} (≤ 2.0, "OK")`);
});
