// The service install: scripts/install-service.sh into a staging root (--destdir), checked file by
// file; production dependencies only; the installed unit passes systemd-analyze verify; the installed
// copy runs as an unprivileged user, as the unit's DynamicUser would, and reads its secrets from a
// credentials directory like the one systemd's LoadCredential= makes; a second run keeps the operator's
// files; uninstall keeps them too.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startOrigin } from './helpers/origin.ts';
import { tempDir, readLog, eventually } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { SERVICE_UID, cannotDropPrivileges, startAsServiceUser, stopRun } from './helpers/service-user.ts';

const REPO = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const SCRIPT = join(REPO, 'scripts/install-service.sh');
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, string> | undefined>;

// Two real installs (each packs proxyd, then npm installs ~145 MB, mostly the Node.js runtime, from the
// registry or npm's cache; 15-40 s on a loaded 2-core machine) and six proxyd starts do not fit the
// suite's 120 s per file: this file gets 240 s.
t.setTimeout(240_000);

// One staging root for the whole file; the install takes ~145 MB, so it is removed at the end. 0755:
// the unprivileged runs below must reach the installed tree through it (mkdtemp makes 0700).
const root = tempDir();
chmodSync(root, 0o755);
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const install = (...args: string[]) => execFileSync('bash', [SCRIPT, '--destdir', root, ...args], { encoding: 'utf8', timeout: 150_000 });
const first = install();

const code = join(root, 'opt/proxyd');
const etc = join(root, 'etc/proxyd');
const logs = join(root, 'var/log/proxyd');
const unitFile = join(root, 'etc/systemd/system/proxyd.service');
const node = join(code, 'bin/node'); // the runtime binary itself
const proxydJs = join(code, 'node_modules/proxyd/bin/proxyd.js'); // the packed package, as npm installed it
const start = join(code, 'bin/proxyd-start'); // the unit's ExecStart

/** Every value of `key=` in the installed unit, in order. */
function unitValues(key: string): string[] {
  return [...readFileSync(unitFile, 'utf8').matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1] ?? '');
}

t.test('the installed unit: ExecStart through proxyd-start, secrets as optional credentials', async (t) => {
  t.match(first, /wrote .*\/etc\/proxyd\/proxyd\.json/);
  t.same(unitValues('ExecStart'), ['/opt/proxyd/bin/proxyd-start --config /etc/proxyd/proxyd.json']);
  t.same(unitValues('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  t.same(unitValues('Restart'), ['always']);
  t.same(unitValues('RestartPreventExitStatus'), ['2'], 'a configuration error (exit 2) is not restarted in a loop');
  t.same(unitValues('DynamicUser'), ['yes']);
  t.same(unitValues('LimitNOFILE'), ['65536']);
  t.same(unitValues('CapabilityBoundingSet'), ['']);
  t.same(unitValues('TimeoutStopSec'), ['20']);
  // Each secret is loaded from /etc/proxyd, with a SetCredential= default so that a missing file does
  // not fail the start; proxyd-start knows the same names (checked by running it below).
  t.same(unitValues('LoadCredential'), ['htpasswd:/etc/proxyd/htpasswd', 'tls-cert:/etc/proxyd/tls-cert.pem', 'tls-key:/etc/proxyd/tls-key.pem']);
  t.same(unitValues('SetCredential'), ['htpasswd:none', 'tls-cert:none', 'tls-key:none']);
  t.ok(statSync(start).mode & 0o111, 'bin/proxyd-start is executable');
});

t.test('/etc/proxyd gets the mode the unit declares, and the service user can read the config in it', async (t) => {
  const declared = unitValues('ConfigurationDirectoryMode');
  t.equal(declared.length, 1, 'the unit declares ConfigurationDirectoryMode once');
  t.equal((statSync(etc).mode & 0o7777).toString(8).padStart(4, '0'), declared[0], `installer's /etc/proxyd mode = unit's ${declared[0]}`);
  // A root-owned directory that others may not enter would lock the DynamicUser out of proxyd.json.
  t.ok(statSync(etc).mode & 0o005, '/etc/proxyd is readable and searchable by others');
  t.ok(statSync(join(etc, 'proxyd.json')).mode & 0o004, 'proxyd.json is readable by others');
  t.ok(statSync(join(etc, 'blocklist.txt')).mode & 0o004, 'blocklist.txt is readable by others');
});

t.test('the packed package with production dependencies only: no devDependency, no sources, and the tree is smaller', async (t) => {
  const manifests = [join(REPO, 'package.json'), join(REPO, 'packages/proxyd/package.json'), join(REPO, 'packages/sync/package.json')].map(readJson);
  const production = new Set(manifests.flatMap((m) => Object.keys(m.dependencies ?? {})));
  // piscina, undici and @proxyd/sync are also root devDependencies (for scripts), but proxyd needs them.
  const devOnly = [...new Set(manifests.flatMap((m) => Object.keys(m.devDependencies ?? {})))].filter((name) => !production.has(name));
  for (const name of ['typescript', 'tap', 'playwright-core']) t.ok(devOnly.includes(name), `${name} is a devDependency`);
  // npm installs flat: node_modules/<name>. The repository's own pnpm tree links each name into the
  // node_modules of the package that depends on it (the root's, or packages/proxyd's).
  const present = (tree: string, name: string) => existsSync(join(tree, 'node_modules', name));
  for (const name of devOnly) {
    t.ok(present(REPO, name) || present(join(REPO, 'packages/proxyd'), name), `the check finds ${name} in the repository's own node_modules`);
    t.notOk(present(code, name), `${name} is not installed`);
  }
  for (const name of production) t.ok(present(code, name), `dependency ${name} is installed`);
  t.equal(readJson(join(code, 'node_modules/proxyd/package.json')).version as unknown, readJson(join(REPO, 'packages/proxyd/package.json')).version as unknown, 'proxyd is this version');
  t.ok(existsSync(join(code, 'node_modules/@proxyd/sync/dist/semaphore.js')), '@proxyd/sync comes along, compiled');
  t.notOk(existsSync(join(code, 'node_modules/proxyd/src')), 'no TypeScript sources: proxyd runs from dist/');
  t.notOk(existsSync(join(code, 'packages/proxyd')), 'nor a copy of the workspace');
  // du counts what the tree takes on disk; before it installed the packed package it was 299 MB (the
  // whole development node_modules), then 140 MB (a production pnpm tree). Most of it is the runtime.
  const kb = Number(execFileSync('du', ['-sk', code], { encoding: 'utf8' }).split('\t')[0]);
  t.ok(kb > 0 && kb < 200 * 1024, `installed tree: ${(kb / 1024).toFixed(0)} MB (du -sk), under 200 MB`);
  t.match(first, new RegExp(`installed ${code.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+M: proxyd \\d+\\.\\d+\\.\\d+, its production dependencies and Node.js v\\d+`), 'the installer reports the size and the versions');
});

t.test('the installed copy runs on its own runtime: --help, and serves a request to a loopback origin', async (t) => {
  t.match(realpathSync(node), /\/node_modules\/node-linux-(x64|arm64)\/bin\/node$/, 'bin/node is the node-linux-* runtime package');
  const version = spawnSync(node, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  const [major = 0, minor = 0] = version.stdout.trim().replace(/^v/, '').split('.').map(Number);
  t.ok((major === 24 && minor >= 20) || (major === 26 && minor >= 5) || major >= 27, `runtime ${version.stdout.trim()} can transfer sockets`);
  const help = spawnSync(node, [proxydJs, '--help'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /--auth-file/, 'proxyd --help');

  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const config = join(etc, 'serve.json');
  const logFile = join(root, 'serve.log');
  writeFileSync(config, JSON.stringify({ host: '127.0.0.1', port: 0, admin: '127.0.0.1:0', workers: 1, 'allow-dest': ['127.0.0.0/8'], 'log-file': logFile, blocklist: join(etc, 'blocklist.txt') }));
  const check = spawnSync(node, [proxydJs, 'check-config', '--config', config], { encoding: 'utf8', timeout: 20_000 });
  t.equal(check.status, 0, check.stderr);
  const { spawn } = await import('node:child_process');
  const child = spawn(node, [proxydJs, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PROXYD_TEST_HOOKS: '1' } });
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
  t.equal(r.body.toString(), 'hello from origin\n');
  const facebook = await curl(['--proxy', `http://127.0.0.1:${port}`, 'http://www.facebook.com/']);
  t.equal(facebook.status, 403, 'with the default blocklist in force');
  child.kill('SIGTERM');
  await exited;
  t.ok(readLog(logFile).some((rec) => rec.event === 'request'), 'logging to the configured file');
  rmSync(config);
});

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
t.test('the installed unit passes systemd-analyze verify without a warning; its exposure score stays low', { skip: analyze.status === 0 ? false : 'systemd-analyze is not installed' }, async (t) => {
  // verify checks that ExecStart exists: point the unit at the staged tree.
  const file = join(tempDir(), 'proxyd.service');
  writeFileSync(file, readFileSync(unitFile, 'utf8').replace(/\/opt\/proxyd/g, code));
  const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  t.equal(verify.status, 0, 'systemd-analyze verify exits 0');
  // verify exits 0 even for a line it ignores ("Invalid syntax, ignoring: ..."): the output must be empty.
  t.equal(verify.stderr.trim() + verify.stdout.trim(), '', 'and says nothing');
  const security = spawnSync('systemd-analyze', ['security', '--offline=yes', file], { encoding: 'utf8' });
  const score = Number(/Overall exposure level for proxyd\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
  t.ok(score > 0 && score <= 2.0, `systemd-analyze security: exposure ${score} (≤ 2.0, "OK")`);
});

t.test('as the service user, proxyd reads its secrets from the credentials directory, not from /etc/proxyd', { skip: cannotDropPrivileges() }, async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  // LogsDirectory= hands the log directory to the service's user.
  chownSync(logs, SERVICE_UID, SERVICE_UID);
  const config = (name: string, extra: Record<string, unknown> = {}) => {
    const file = join(etc, `${name}.json`);
    const options = { host: '127.0.0.1', port: 0, admin: '127.0.0.1:0', workers: 1, 'allow-dest': ['127.0.0.0/8'], 'log-file': join(logs, `${name}.log`), blocklist: join(etc, 'blocklist.txt'), ...extra };
    writeFileSync(file, JSON.stringify(options), { mode: 0o644 });
    return file;
  };

  // The operator's secrets, root's own, 0600, where the unit's LoadCredential= lines read them.
  writeFileSync(join(etc, 'htpasswd'), `alice:${bcrypt.hashSync('wonderland', 4).replace(/^\$2b\$/, '$2y$')}\n`, { mode: 0o600 });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', join(etc, 'tls-key.pem'), '-out', join(etc, 'tls-cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  for (const secret of ['htpasswd', 'tls-cert.pem', 'tls-key.pem']) chmodSync(join(etc, secret), 0o600);

  /** A directory as systemd makes it for LoadCredential=: the service user's, 0500, each file 0400. */
  const credentials = (name: string, files: Record<string, string | Buffer>) => {
    const dir = join(root, 'run/credentials', name);
    mkdirSync(dir, { recursive: true });
    for (const [id, content] of Object.entries(files)) {
      writeFileSync(join(dir, id), content, { mode: 0o400 });
      chownSync(join(dir, id), SERVICE_UID, SERVICE_UID);
    }
    chownSync(dir, SERVICE_UID, SERVICE_UID);
    chmodSync(dir, 0o500);
    return dir;
  };
  const fromUnit = (id: string) => {
    const load = unitValues('LoadCredential').find((v) => v.startsWith(`${id}:`));
    if (!load) throw new Error(`the unit has no LoadCredential=${id}:...`);
    return load.slice(id.length + 1).replace(/^\/etc\/proxyd/, etc); // the staged copy of that path
  };

  await t.test('the bug: a root-only secret named in proxyd.json cannot be read, and proxyd exits 2', async (t) => {
    const run = await startAsServiceUser(start, ['--config', config('direct', { 'auth-file': join(etc, 'htpasswd') })], { cwd: logs });
    t.teardown(() => void run.child.kill('SIGKILL'));
    t.equal(await run.exited, 2, 'exit 2, which the unit does not restart');
    t.match(run.stderr(), /auth file .*htpasswd: permission denied/, run.stderr().trim().split('\n').at(-2) ?? run.stderr());
  });

  await t.test('with the credentials, it serves TLS and asks for the password; signals reach proxyd itself', async (t) => {
    const dir = credentials('all', {
      htpasswd: readFileSync(fromUnit('htpasswd')),
      'tls-cert': readFileSync(fromUnit('tls-cert')),
      'tls-key': readFileSync(fromUnit('tls-key')),
    });
    // The config as docs/ec2.md used to have it (auth-file naming the root-only file): the credential's
    // flag wins over it, so an existing installation starts once the unit is updated.
    const file = config('credentials', { 'auth-file': join(etc, 'htpasswd') });
    const run = await startAsServiceUser(start, ['--config', file], { cwd: logs, credentialsDirectory: dir });
    t.teardown(() => void run.child.kill('SIGKILL'));
    t.match(run.stderr(), /proxyd-start: credentials handed to proxyd: htpasswd tls-cert tls-key/);
    t.match(run.url, /^https:\/\/127\.0\.0\.1:\d+$/, `listening with TLS: ${run.url ?? run.stderr()}`);
    t.equal(readlinkSync(`/proc/${run.child.pid}/exe`), realpathSync(node), 'the process systemd started is node itself (proxyd-start execs it)');
    const status = Number(readFileSync(`/proc/${run.child.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1]);
    t.equal(status, SERVICE_UID, 'running as the unprivileged user');

    const via = ['--proxy', run.url!, '--proxy-cacert', fromUnit('tls-cert')];
    t.equal((await curl([...via, origin.url('/hello')])).status, 407, 'no password: 407');
    t.equal((await curl([...via, '--proxy-user', 'alice:queen', origin.url('/hello')])).status, 407, 'a wrong one: 407');
    const good = await curl([...via, '--proxy-user', 'alice:wonderland', origin.url('/hello')]);
    t.equal(good.status, 200, `alice through the TLS proxy: ${good.stderr}`);

    const log = join(logs, 'credentials.log');
    run.child.kill('SIGHUP'); // what ExecReload sends to $MAINPID
    await eventually(() => readLog(log).some((rec) => rec.event === 'reload'), 'the reload record after SIGHUP');
    t.pass('SIGHUP reloaded proxyd');
    t.equal(await stopRun(run), 0, 'SIGTERM: drained and exited 0');
    t.match(run.stdout(), /proxyd: stopped/);
  });

  await t.test("without secret files: the unit's SetCredential= defaults, and proxyd starts plain, without passwords", async (t) => {
    const defaults = Object.fromEntries(unitValues('SetCredential').map((v) => [v.slice(0, v.indexOf(':')), v.slice(v.indexOf(':') + 1)]));
    t.same(Object.keys(defaults), ['htpasswd', 'tls-cert', 'tls-key']);
    const run = await startAsServiceUser(start, ['--config', config('defaults')], { cwd: logs, credentialsDirectory: credentials('defaults', defaults) });
    t.teardown(() => void run.child.kill('SIGKILL'));
    t.match(run.stderr(), /proxyd-start: credentials handed to proxyd: none/);
    t.match(run.url, /^http:\/\/127\.0\.0\.1:\d+$/, `listening without TLS: ${run.url ?? run.stderr()}`);
    t.equal((await curl(['--proxy', run.url!, origin.url('/hello')])).status, 200, 'a loopback client needs no password');
    t.equal(await stopRun(run), 0);
  });

  await t.test('an empty htpasswd is handed on, and proxyd refuses it (exit 2) instead of running without passwords', async (t) => {
    const run = await startAsServiceUser(start, ['--config', config('empty')], { cwd: logs, credentialsDirectory: credentials('empty', { htpasswd: '', 'tls-cert': 'none', 'tls-key': 'none' }) });
    t.teardown(() => void run.child.kill('SIGKILL'));
    t.equal(await run.exited, 2);
    t.match(run.stderr(), /auth file .*: no users in the file/);
  });

  for (const name of ['direct', 'credentials', 'defaults', 'empty']) rmSync(join(etc, `${name}.json`), { force: true });
});

t.test('a second run keeps the operator files and restores the mode; uninstall keeps them too', async (t) => {
  const config = join(etc, 'proxyd.json');
  // An installation that followed the old docs/ec2.md: auth-file in proxyd.json, htpasswd 0640.
  const edited = JSON.stringify({ port: 0, 'auth-file': '/etc/proxyd/htpasswd' });
  writeFileSync(config, edited);
  writeFileSync(join(etc, 'htpasswd'), 'alice:$2y$04$notarealhashnotarealhashnotarealhashnotarealhashnota\n', { mode: 0o640 });
  chmodSync(join(etc, 'htpasswd'), 0o640);
  writeFileSync(join(etc, 'tls-key.pem'), 'key', { mode: 0o600 });
  chmodSync(join(etc, 'tls-key.pem'), 0o600);
  writeFileSync(join(etc, 'tls-cert.pem'), 'cert', { mode: 0o644 });
  chmodSync(join(etc, 'tls-cert.pem'), 0o644);
  chmodSync(etc, 0o700); // a umask or a hand-made directory: the installer sets the unit's mode again
  const second = install();
  t.notMatch(second, /wrote .*proxyd\.json/, 'not rewritten');
  t.equal(readFileSync(config, 'utf8'), edited, "the operator's edits are kept");
  for (const secret of ['htpasswd', 'tls-cert.pem', 'tls-key.pem']) {
    t.match(second, new RegExp(`secret .*/etc/proxyd/${secret.replace('.', '\\.')}: handed to the service as a credential`), `says ${secret} is passed on`);
  }
  t.match(second, /note: .*\/htpasswd is readable by others than root/, 'a group-readable htpasswd is pointed out');
  t.notMatch(second, /note: .*tls-(key|cert)\.pem is readable/, 'a 0600 key and a public certificate are not');
  t.match(second, /note: .*proxyd\.json names auth-file/, 'and a secret named in proxyd.json');
  t.equal(statSync(join(etc, 'htpasswd')).mode & 0o777, 0o640, "the operator's secret itself is left as it is");
  t.equal((statSync(etc).mode & 0o7777).toString(8).padStart(4, '0'), unitValues('ConfigurationDirectoryMode')[0], 'mode set again');
  t.ok(existsSync(node) && existsSync(start), 'the code is in place again');
  t.same(readdirSync(join(root, 'opt')), ['proxyd'], 'no staging or old tree left beside it');

  const removed = execFileSync('bash', [SCRIPT, '--destdir', root, '--uninstall'], { encoding: 'utf8' });
  t.match(removed, /kept/);
  t.notOk(existsSync(code), 'the code is gone');
  t.notOk(existsSync(unitFile), 'the unit is gone');
  t.ok(existsSync(config), 'the config is kept');
  t.ok(existsSync(logs), 'the logs are kept');
  const bad = spawnSync('bash', [SCRIPT, '--frobnicate'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown option --frobnicate/);
});
