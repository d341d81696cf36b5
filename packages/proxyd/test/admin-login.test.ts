// Logging in to a non-loopback admin server: the users of --auth-file, re-read on SIGHUP, checked
// through a cache of verified credentials with a failure throttle (the admin server runs on the
// primary, the thread that accepts every connection, so it must not pay a bcrypt check per request).
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startTestProxy, tempDir } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';
import { CredentialCache } from '../src/policy/credential-cache.ts';

function htpasswd(dir: string, name: string, user: string, password: string): string {
  const file = join(dir, name);
  writeFileSync(file, `${user}:${bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2y$')}\n`);
  return file;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

t.test('a public admin address logs in with the proxy users, and a reload changes them', async (t) => {
  const dir = tempDir();
  const first = htpasswd(dir, 'first', 'alice', 'wonderland');
  const second = htpasswd(dir, 'second', 'bob', 'builder');
  // 0.0.0.0 is not loopback, so logins are required; the test reaches it on 127.0.0.1.
  const proxy = await startTestProxy(t, { workers: 1, authFile: first, admin: { host: '0.0.0.0', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
  });
  const url = `http://127.0.0.1:${admin.address.port}/api/stats`;

  const anonymous = await curl([url]);
  t.equal(anonymous.status, 401, 'no credentials: 401');
  t.match(anonymous.headers, /WWW-Authenticate: Basic realm="proxyd admin"/i);
  t.equal((await curl(['--user', 'alice:queen', url])).status, 401, 'wrong password: 401');
  const good = await curl(['--user', 'alice:wonderland', url]);
  t.equal(good.status, 200, 'a user of --auth-file logs in');
  t.type(JSON.parse(good.body.toString()).stats.accepted, 'number', 'and reads the stats');

  await proxy.reload({ ...proxy.options, authFile: second });
  t.equal((await curl(['--user', 'alice:wonderland', url])).status, 401, 'after the reload the old user is gone (even though her login was cached)');
  t.equal((await curl(['--user', 'bob:builder', url])).status, 200, 'and the new user logs in');
});

t.test('an address that fails ten logins is refused even with the right password', async (t) => {
  const dir = tempDir();
  const file = htpasswd(dir, 'users', 'alice', 'wonderland');
  const proxy = await startTestProxy(t, { workers: 1, authFile: file, admin: { host: '0.0.0.0', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
  });
  const url = `http://127.0.0.1:${admin.address.port}/healthz`;
  for (let i = 0; i < 10; i++) t.equal((await curl(['--interface', '127.0.0.2', '--user', `alice:guess${i}`, url])).status, 401);
  t.equal((await curl(['--interface', '127.0.0.2', '--user', 'alice:wonderland', url])).status, 401, 'throttled address: refused');
  t.equal((await curl(['--interface', '127.0.0.3', '--user', 'alice:wonderland', url])).status, 200, 'another address is not affected');
});

t.test('CredentialCache: a verified credential is hashed once, then read from the cache', async (t) => {
  // Count the lookups of a user's hash: only the uncached path reads it (the cached path asks has()).
  let hashLookups = 0;
  class CountingUsers extends Map<string, string> {
    override get(user: string): string | undefined {
      hashLookups++;
      return super.get(user);
    }
  }
  const cache = new CredentialCache(new CountingUsers([['alice', bcrypt.hashSync('wonderland', 4)]]));
  t.same(await cache.check(basic('alice', 'wonderland'), '127.0.0.1'), { ok: true, user: 'alice' });
  t.same(await cache.check(basic('alice', 'wonderland'), '127.0.0.1'), { ok: true, user: 'alice' });
  t.same(await cache.check(basic('alice', 'wonderland'), '127.0.0.9'), { ok: true, user: 'alice' });
  t.equal(hashLookups, 1, 'three successful checks, one hash verification');
  t.same(await cache.check(basic('alice', 'wrong'), '127.0.0.1'), { ok: false, why: 'invalid' });
  t.equal(hashLookups, 2, 'a different password is verified, not taken from the cache');
  t.same(await cache.check(undefined, '127.0.0.1'), { ok: false, why: 'missing' });
  t.same(await cache.check('Bearer abc', '127.0.0.1'), { ok: false, why: 'missing' });
  cache.setUsers(new CountingUsers([['alice', bcrypt.hashSync('new', 4)]]));
  t.same(await cache.check(basic('alice', 'wonderland'), '127.0.0.1'), { ok: false, why: 'invalid' }, 'new users forget the old cache');
  t.equal(hashLookups, 3);
  t.same(await new CredentialCache(undefined).check(undefined, '127.0.0.1'), { ok: true, user: '' }, 'no users: everyone passes');
});
