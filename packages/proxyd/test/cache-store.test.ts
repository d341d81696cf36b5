// The cache's store as an operator meets it: the disk store survives a restart; a truncated or damaged
// file and a read-only directory are logged and bypassed — the proxy keeps serving, uncached, with the
// right bytes, and never crashes.
import t from 'tap';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCacheOrigin } from './helpers/cache-origin.ts';
import { BIN, eventually, readLog, startCliProxy, tempDir } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { patternSha256, sha256 } from './helpers/origin.ts';
import { SERVICE_UID, cannotDropPrivileges, startAsServiceUser, stopRun } from './helpers/service-user.ts';

const FILE = 'proxyd-cache.sqlite';
const origin = await startCacheOrigin();
t.teardown(() => origin.close());

const cacheStatus = (headers: string): string => /^cache-status: (.*?)\r?$/im.exec(headers)?.[1] ?? '';

t.test('--cache-dir survives SIGTERM and a new start: the object is a hit, the origin saw one request', async (t) => {
  const dir = join(tempDir(), 'cache');
  const p = '/restart?cc=max-age%3D600&size=600000';
  const first = await startCliProxy(t, ['--cache-dir', dir, '--workers', '2']);
  const a = await curl(['--proxy', first.url, origin.url(p)]);
  t.equal(sha256(a.body), patternSha256(600_000));
  t.match(cacheStatus(a.headers), /fwd=uri-miss/);
  t.equal(await first.stop('SIGTERM'), 0, 'stopped cleanly');
  t.ok(existsSync(join(dir, FILE)), 'the file stays');

  const second = await startCliProxy(t, ['--cache-dir', dir, '--workers', '2']);
  t.teardown(() => second.stop());
  // The logger thread writes in batches: the banner on stdout can come before the record is in the file.
  await eventually(() => readLog(second.logFile).some((r) => r.event === 'started'), 'the started record');
  const started = readLog(second.logFile).find((r) => r.event === 'started');
  t.match(started?.cache, /disk .* 1 entry kept/, `the start record says what was kept: ${String(started?.cache)}`);
  const b = await curl(['--proxy', second.url, origin.url(p)]);
  t.equal(sha256(b.body), patternSha256(600_000), 'the same bytes');
  t.equal(cacheStatus(b.headers), 'proxyd; hit');
  t.equal(origin.count(p), 1, 'one origin request over both runs');
  await eventually(() => readLog(second.logFile).some((r) => r.event === 'request' && r.cache === 'HIT'), 'the HIT tag in the log');
});

t.test('a truncated cache file: logged, bypassed, the proxy serves uncached and right', async (t) => {
  const dir = join(tempDir(), 'cache');
  const first = await startCliProxy(t, ['--cache-dir', dir, '--workers', '1']);
  for (let i = 0; i < 20; i++) await curl(['--proxy', first.url, origin.url(`/trunc/${i}?cc=max-age%3D600&size=70000`)]);
  await first.stop();
  truncateSync(join(dir, FILE), 9000); // the header survives, most pages do not
  const second = await startCliProxy(t, ['--cache-dir', dir, '--workers', '2']);
  t.teardown(() => second.stop());
  const p = '/trunc/0?cc=max-age%3D600&size=70000';
  for (let i = 0; i < 3; i++) {
    const r = await curl(['--proxy', second.url, origin.url(p)]);
    t.equal(r.status, 200);
    t.equal(sha256(r.body), patternSha256(70_000), `request ${i}: the right bytes`);
  }
  t.equal(origin.count(p), 4, 'each went to the origin (the first run once, this run three times)');
  await eventually(() => readLog(second.logFile).some((r) => r.event === 'cache-error'), 'a cache-error record');
  const error = readLog(second.logFile).find((r) => r.event === 'cache-error');
  t.match(error?.error, /serving without a cache|malformed|not a database|integrity/i, String(error?.error));
  t.equal(second.child.exitCode, null, 'still running');
});

t.test('a cache file damaged while the proxy runs: errors are bypassed, no wrong body, no crash', async (t) => {
  const dir = join(tempDir(), 'cache');
  const proxy = await startCliProxy(t, ['--cache-dir', dir, '--workers', '2']);
  t.teardown(() => proxy.stop());
  const paths = Array.from({ length: 6 }, (_, i) => `/damage/${i}?cc=max-age%3D600&size=300000`);
  for (const p of paths) await curl(['--proxy', proxy.url, origin.url(p)]);
  // Overwrite the middle of the file and its write-ahead log with garbage, under the running threads.
  for (const name of [FILE, `${FILE}-wal`]) {
    const file = join(dir, name);
    if (!existsSync(file)) continue;
    const bytes = readFileSync(file);
    bytes.fill(0xa5, Math.floor(bytes.length / 4), bytes.length);
    writeFileSync(file, bytes);
  }
  for (const p of paths) {
    const r = await curl(['--proxy', proxy.url, origin.url(p)]);
    // A body cut short would show as a curl error (a length mismatch); a wrong one as a wrong hash.
    if (r.code === 0) t.equal(sha256(r.body), patternSha256(300_000), `${p}: the right bytes (${cacheStatus(r.headers)})`);
    else t.pass(`${p}: cut off (curl ${r.code}), never a wrong body`);
  }
  const after = await curl(['--proxy', proxy.url, origin.url('/damage/new?cc=max-age%3D600')]);
  t.equal(after.status, 200, 'still serving');
  t.equal(proxy.child.exitCode, null, 'still running');
});

t.test('a read-only cache directory: logged, and the proxy serves without a cache', { skip: cannotDropPrivileges() }, async (t) => {
  const root = tempDir();
  chmodSync(root, 0o755);
  const cacheDir = join(root, 'cache'); // root's, 0755: the service user may read it, not write in it
  mkdirSync(cacheDir, { mode: 0o755 });
  const logs = join(root, 'logs');
  mkdirSync(logs);
  chownSync(logs, SERVICE_UID, SERVICE_UID);
  const run = await startAsServiceUser(process.execPath, [BIN, '--port', '0', '--admin', 'off', '--allow-dest', '127.0.0.0/8', '--cache-dir', cacheDir, '--workers', '1'], { cwd: logs });
  t.teardown(() => void run.child.kill('SIGKILL'));
  t.ok(run.url, `started: ${run.url ?? run.stderr()}`);
  const p = '/readonly?cc=max-age%3D600';
  for (let i = 0; i < 2; i++) t.equal((await curl(['--proxy', run.url!, origin.url(p)])).status, 200);
  t.equal(origin.count(p), 2, 'uncached: both reached the origin');
  await eventually(() => existsSync(join(logs, 'proxy.log')) && readLog(join(logs, 'proxy.log')).some((r) => r.event === 'cache-error'), 'a cache-error record');
  t.match(readLog(join(logs, 'proxy.log')).find((r) => r.event === 'cache-error')?.error, /cannot use the cache file .*serving without a cache/);
  t.equal(await stopRun(run), 0, 'stops cleanly');
});

t.test('memory mode: a directory left on tmpfs by a proxy that was killed is removed at the next start', { skip: existsSync('/dev/shm') ? false : 'no /dev/shm' }, async (t) => {
  const orphan = '/dev/shm/proxyd-cache-4194999-test'; // above Linux's largest pid: no such process
  mkdirSync(orphan, { recursive: true });
  writeFileSync(join(orphan, FILE), 'left behind');
  const proxy = await startCliProxy(t, ['--workers', '1']);
  t.teardown(() => proxy.stop());
  t.notOk(existsSync(orphan), 'the orphan is gone');
  await eventually(() => readLog(proxy.logFile).some((r) => r.event === 'started'), 'the started record');
  const started = readLog(proxy.logFile).find((r) => r.event === 'started');
  t.match(started?.cache, new RegExp(`^memory 256M .* in /dev/shm/proxyd-cache-\\d+-`), String(started?.cache));
});
