// Proxy users from an htpasswd file ("user:hash" per line, "#" comments). Hashes are checked with
// maintained libraries: bcrypt ($2y$, $2a$, $2b$) with bcryptjs, Apache MD5 ($apr1$) with apache-md5,
// and {SHA} (base64 SHA-1, legacy) with node:crypto. Plain-text and crypt(3) DES entries are refused when
// the file is loaded: they are too weak to accept on a public host.
// The two libraries are imported on the first check of a hash of their kind, not with this module:
// every thread loads this file, most proxies have no --auth-file, and the two cost ~0.8 MiB of heap in
// each of them (issue 20). import() loads a module once; later calls get the same one.
import { createHash, timingSafeEqual } from 'node:crypto';

export type Users = ReadonlyMap<string, string>;

export function parseHtpasswd(text: string): Users {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || hash === '') throw new Error(`line ${i + 1}: expected "user:hash"`);
    if (!/^\$2[aby]\$\d\d\$.{53}$/.test(hash) && !hash.startsWith('$apr1$') && !hash.startsWith('{SHA}')) {
      throw new Error(`line ${i + 1}: user "${user}" has an unsupported hash (use bcrypt: htpasswd -B)`);
    }
    users.set(user, hash);
  });
  if (users.size === 0) throw new Error('no users in the file');
  return users;
}

/** Check a password against an htpasswd hash. bcrypt is slow by design: callers cache successes. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (hash.startsWith('$2')) {
    const { default: bcrypt } = await import('bcryptjs');
    return bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'));
  }
  if (hash.startsWith('$apr1$')) {
    // apache-md5 is CommonJS (module.exports = fn) with an ES-style d.ts: at run time the default
    // export is the function itself.
    const md5 = (await import('apache-md5')).default as unknown as (password: string, salt?: string) => string;
    return safeEqual(md5(password, hash), hash);
  }
  if (hash.startsWith('{SHA}')) return safeEqual(`{SHA}${createHash('sha1').update(password).digest('base64')}`, hash);
  return false;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
