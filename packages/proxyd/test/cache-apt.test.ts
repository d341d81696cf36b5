// Debian's apt through the cache, as a CI box or a fleet of machines uses it: apt-get, with
// Acquire::http::Proxy set to proxyd, updates from a small repository that the test builds (dpkg-deb for
// a package, apt-ftparchive for the indexes) and serves on loopback like a mirror (Last-Modified and ETag,
// no Cache-Control: a mirror's files are old, and a shared cache may keep them for a heuristic while),
// then downloads the package twice. The second download is a hit: the origin counts one request for the
// .deb, and the log says HIT.
//
// apt runs unprivileged in a temp directory: its state, cache, lists and sources all point there
// (Dir::State, Dir::Cache, Dir::Etc::sourcelist), Debug::NoLocking=1 skips the system's lock files and
// APT::Sandbox::User=root keeps it from switching to the _apt user (which could not read the temp dir).
import t from 'tap';
import http from 'node:http';
import { execFile, spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { eventually, readLog, startTestProxy, tempDir } from './helpers/proxy.ts';
import { sha256 } from './helpers/origin.ts';

const missing = ['apt-get', 'apt-ftparchive', 'dpkg-deb'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);

t.test('apt-get update and download through proxyd: the second download is a HIT', { skip: missing.length ? `needs ${missing.join(', ')} (Debian: apt, apt-utils, dpkg)` : false }, async (t) => {
  const root = tempDir();
  const repo = join(root, 'repo');
  const payload = randomBytes(300 * 1024); // a package with 300 KiB of content
  const deb = buildPackage(root, repo, payload);
  indexRepository(repo);
  const origin = await serveRepository(repo);
  t.teardown(() => origin.close());
  const proxy = await startTestProxy(t, { workers: 2 });
  t.teardown(() => proxy.close(500));

  const apt = aptConfig(root, `http://127.0.0.1:${origin.port}/`, proxy.url);
  const update = await run('apt-get', [...apt, 'update']);
  t.equal(update.code, 0, `apt-get update: ${update.tail}`);
  t.ok(origin.count('/Packages') + origin.count('/Packages.gz') + origin.count('/Packages.xz') >= 1, 'apt fetched the package index through the proxy');

  const downloads = join(root, 'downloads');
  for (let i = 1; i <= 2; i++) {
    rmSync(downloads, { recursive: true, force: true });
    mkdirSync(downloads);
    const got = await run('apt-get', [...apt, 'download', 'proxyd-test'], downloads);
    t.equal(got.code, 0, `download ${i}: ${got.tail}`);
    const file = readdirSync(downloads).find((f) => f.endsWith('.deb'));
    t.ok(file, `download ${i}: a .deb`);
    t.equal(sha256(readFileSync(join(downloads, file!))), sha256(readFileSync(deb)), `download ${i}: the package's exact bytes`);
  }
  const debPath = `/${deb.slice(repo.length + 1)}`;
  t.equal(origin.count(debPath), 1, 'the origin served the .deb once');
  const url = `http://127.0.0.1:${origin.port}${debPath}`;
  await eventually(() => readLog(proxy.logFile).filter((r) => r.event === 'request' && r.url === url).length === 2, 'both download records');
  t.same(
    readLog(proxy.logFile).filter((r) => r.event === 'request' && r.url === url).map((r) => r.cache),
    ['MISS', 'HIT'],
    'the log tags: MISS, then HIT',
  );
});

/** A tiny package with `payload` in it: dpkg-deb --build. Its path in the repository. */
function buildPackage(root: string, repo: string, payload: Buffer): string {
  const pkg = join(root, 'pkg');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/share/proxyd-test'), { recursive: true });
  writeFileSync(join(pkg, 'usr/share/proxyd-test/payload.bin'), payload);
  writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: proxyd-test\nVersion: 1.0\nArchitecture: all\nMaintainer: proxyd tests <tests@localhost>\nDescription: a package for the cache test\n');
  const pool = join(repo, 'pool');
  mkdirSync(pool, { recursive: true });
  const deb = join(pool, 'proxyd-test_1.0_all.deb');
  const built = spawnSync('dpkg-deb', ['--root-owner-group', '--build', pkg, deb], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`dpkg-deb: ${built.stderr}`);
  return deb;
}

/** A flat repository ("deb URL ./"): Packages and Release by apt-ftparchive; every file a month old, as on a mirror. */
function indexRepository(repo: string): void {
  const packages = spawnSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo, encoding: 'utf8' });
  if (packages.status !== 0) throw new Error(`apt-ftparchive packages: ${packages.stderr}`);
  writeFileSync(join(repo, 'Packages'), packages.stdout);
  const release = spawnSync('apt-ftparchive', ['release', '.'], { cwd: repo, encoding: 'utf8' });
  if (release.status !== 0) throw new Error(`apt-ftparchive release: ${release.stderr}`);
  writeFileSync(join(repo, 'Release'), release.stdout);
  const monthAgo = new Date(Date.now() - 30 * 24 * 3600 * 1000);
  for (const f of ['Packages', 'Release', 'pool/proxyd-test_1.0_all.deb']) utimesSync(join(repo, f), monthAgo, monthAgo);
}

/** A static file server like a mirror's: Last-Modified and ETag, 304 on If-None-Match; counts requests per path. */
async function serveRepository(repo: string): Promise<{ port: number; count(path: string): number; close(): Promise<void> }> {
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const file = join(repo, path);
    let st;
    try {
      st = statSync(file);
      if (!st.isFile() || !file.startsWith(repo)) throw new Error('not a file');
    } catch {
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
    const etag = `"${st.size}-${Math.floor(st.mtimeMs)}"`;
    const headers = { 'last-modified': st.mtime.toUTCString(), etag, 'content-length': String(st.size), 'content-type': 'application/octet-stream' };
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { 'last-modified': headers['last-modified'], etag }).end();
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    count: (p) => counts.get(p) ?? 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** apt-get options that keep it in `root` and send it through the proxy. */
function aptConfig(root: string, repoUrl: string, proxyUrl: string): string[] {
  const state = join(root, 'apt/state');
  const cache = join(root, 'apt/cache');
  const etc = join(root, 'apt/etc');
  for (const d of [join(state, 'lists/partial'), join(cache, 'archives/partial'), join(etc, 'sources.list.d'), join(etc, 'preferences.d'), join(etc, 'apt.conf.d'), join(etc, 'trusted.gpg.d')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(state, 'status'), '');
  writeFileSync(join(etc, 'sources.list'), `deb [trusted=yes] ${repoUrl} ./\n`);
  return [
    '-q',
    '-o', `Acquire::http::Proxy=${proxyUrl}/`,
    '-o', `Dir::State=${state}`,
    '-o', `Dir::State::status=${join(state, 'status')}`,
    '-o', `Dir::Cache=${cache}`,
    '-o', `Dir::Etc=${etc}`,
    '-o', `Dir::Etc::sourcelist=${join(etc, 'sources.list')}`,
    '-o', `Dir::Etc::sourceparts=${join(etc, 'sources.list.d')}`,
    '-o', `Dir::Etc::parts=${join(etc, 'apt.conf.d')}`,
    '-o', `Dir::Etc::preferencesparts=${join(etc, 'preferences.d')}`,
    '-o', 'Debug::NoLocking=1',
    '-o', 'APT::Sandbox::User=root',
    '-o', 'Acquire::Languages=none',
    '-o', 'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false',
  ];
}

function run(command: string, args: string[], cwd?: string): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: 60_000, env: { ...process.env, LANG: 'C' } }, (err, stdout, stderr) => {
      const tail = `${stdout}${stderr}`.trim().split('\n').slice(-4).join(' / ');
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, tail });
    });
  });
}
