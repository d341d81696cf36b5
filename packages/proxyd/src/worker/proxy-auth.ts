/**
 * Proxy authentication (Basic, over Proxy-Authorization) against the users of --auth-file.
 *
 * bcrypt is slow on purpose (tens of milliseconds a check), so a credential that verified is remembered
 * for a while, keyed by a SHA-256 of the header value (the password itself is never kept or logged).
 * An address that fails too often is throttled: 429 until its window passes. Both tables are per thread
 * and bounded.
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { verifyPassword, type Users } from '../policy/htpasswd.ts';

export type AuthResult = { ok: true; user: string } | { ok: false; why: 'missing' | 'invalid' | 'throttled' };

const REMEMBER_MS = 5 * 60_000;
const FAILURE_WINDOW_MS = 60_000;
const MAX_FAILURES = 10;
const MAX_ENTRIES = 10_000;

export class ProxyAuth {
  #users: Users | undefined;
  readonly #verified = new Map<string, { user: string; until: number }>();
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(users: Users | undefined) {
    this.#users = users;
  }

  get enabled(): boolean {
    return this.#users !== undefined;
  }

  /** New users (SIGHUP): forget what was verified against the old ones. */
  setUsers(users: Users | undefined): void {
    this.#users = users;
    this.#verified.clear();
  }

  async check(req: http.IncomingMessage, clientAddress: string): Promise<AuthResult> {
    const users = this.#users;
    if (!users) return { ok: true, user: '' };
    const now = Date.now();
    const failures = this.#failures.get(clientAddress);
    if (failures && now - failures.since < FAILURE_WINDOW_MS && failures.count >= MAX_FAILURES) return { ok: false, why: 'throttled' };

    const header = req.headers['proxy-authorization'];
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
    const entry = this.#failures.get(address);
    if (!entry || now - entry.since >= FAILURE_WINDOW_MS) {
      if (this.#failures.size >= MAX_ENTRIES) this.#failures.clear();
      this.#failures.set(address, { count: 1, since: now });
    } else entry.count++;
  }
}
