/**
 * Basic credentials checked against the users of --auth-file, with what a check costs kept off the
 * hot path: bcrypt is slow on purpose (tens of milliseconds), and bcryptjs runs on the *calling*
 * thread's event loop, in slices (it yields between rounds, but the CPU it burns is that thread's). So
 * a credential that verified is remembered for a while, keyed by a SHA-256 of the header's token (the
 * password itself is never kept or logged), and — for the admin server's logins — an address that fails
 * too often is throttled until its window passes. Both tables are per instance (per thread) and
 * bounded. The serving threads leave the throttle off: their wrong passwords are counted across every
 * thread, in shared memory (limits/client-limits.ts, --ban-auth-failures).
 *
 * Used by the serving threads for Proxy-Authorization and by the admin server (on the primary, the
 * thread that accepts everyone's connections) for Authorization.
 */
import { createHash } from 'node:crypto';
import { verifyPassword, type Users } from './htpasswd.ts';

export type CredentialCheck = { ok: true; user: string } | { ok: false; why: 'missing' | 'invalid' | 'throttled' };

const REMEMBER_MS = 5 * 60_000;
const FAILURE_WINDOW_MS = 60_000;
const MAX_FAILURES = 10;
const MAX_ENTRIES = 10_000;

export class CredentialCache {
  #users: Users | undefined;
  readonly #verified = new Map<string, { user: string; until: number }>();
  readonly #failures = new Map<string, { count: number; since: number }>();

  readonly #throttle: boolean;

  /**
   * With `throttle` (the admin server's logins) an address that fails MAX_FAILURES times in a minute is
   * refused for the rest of it, per instance. The serving threads turn it off: they count wrong
   * passwords across every thread (limits/, --ban-auth-failures) instead.
   */
  constructor(users: Users | undefined, { throttle = true } = {}) {
    this.#users = users;
    this.#throttle = throttle;
  }

  /** True when there are users to check against (authentication is on). */
  get enabled(): boolean {
    return this.#users !== undefined;
  }

  /** New users (SIGHUP): forget what was verified against the old ones. */
  setUsers(users: Users | undefined): void {
    this.#users = users;
    this.#verified.clear();
  }

  /** Check a `Basic <token>` header value from `clientAddress`. With no users, everyone passes. */
  async check(header: string | undefined, clientAddress: string): Promise<CredentialCheck> {
    const users = this.#users;
    if (!users) return { ok: true, user: '' };
    const now = Date.now();
    const failures = this.#failures.get(clientAddress);
    if (this.#throttle && failures && now - failures.since < FAILURE_WINDOW_MS && failures.count >= MAX_FAILURES) return { ok: false, why: 'throttled' };

    const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    if (!match) return { ok: false, why: 'missing' };
    const key = createHash('sha256').update(match[1]!).digest('base64');
    const known = this.#verified.get(key);
    if (known && known.until > now && users.has(known.user)) return { ok: true, user: known.user };

    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const hash = users.get(user);
    if (colon < 0 || hash === undefined || !(await verifyPassword(decoded.slice(colon + 1), hash))) {
      this.#countFailure(clientAddress, now);
      return { ok: false, why: 'invalid' };
    }
    if (this.#verified.size >= MAX_ENTRIES) this.#verified.clear();
    this.#verified.set(key, { user, until: now + REMEMBER_MS });
    return { ok: true, user };
  }

  #countFailure(address: string, now: number): void {
    if (!this.#throttle) return;
    const entry = this.#failures.get(address);
    if (!entry || now - entry.since >= FAILURE_WINDOW_MS) {
      if (this.#failures.size >= MAX_ENTRIES) this.#failures.clear();
      this.#failures.set(address, { count: 1, since: now });
    } else entry.count++;
  }
}
