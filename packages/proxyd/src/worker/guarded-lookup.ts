/**
 * DNS resolution that enforces the destination policy on the address that will be dialled.
 *
 * net.connect() and http.request() take a `lookup` function; the address it returns is the one the
 * socket connects to. Checking inside it closes the gap a separate "resolve, check, then connect" leaves
 * open (DNS rebinding: a second lookup at connect time answering differently). If any address a name
 * resolves to is forbidden, the whole name is refused. IP literals never reach `lookup` (net connects to
 * them directly), so callers check those with checkLiteral() first.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { DestinationPolicy } from '../policy/destination-policy.ts';
import { inList, LOOPBACK, rule } from '../policy/address-rules.ts';

export class ForbiddenDestinationError extends Error {
  readonly code = 'EDESTFORBIDDEN';
  readonly rule: string;
  readonly address: string;
  constructor(rule: string, address: string) {
    super(`destination ${address} is forbidden (${rule})`);
    this.rule = rule;
    this.address = address;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

export function guardedLookup(policy: DestinationPolicy, port: number, loopbackOnly = false) {
  return function lookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
    const resolve = loopbackOnly && LOCALHOST_NAME.test(hostname) ? lookupLocalhost : dns.lookup;
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      for (const a of addresses) {
        const rule = policy.check(a.address, port) ?? (loopbackOnly && !isLoopback(a.address) ? TEST_GUARD : undefined);
        if (rule !== undefined) return callback(new ForbiddenDestinationError(rule, a.address), []);
      }
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** For an IP literal host: the rule that forbids it, if any (undefined also for names). */
export function checkLiteral(policy: DestinationPolicy, host: string, port: number): string | undefined {
  return net.isIP(host) ? policy.check(host, port) : undefined;
}

/**
 * Under PROXYD_TEST_HOOKS=1 the proxy dials loopback only, whatever the policy says: the tests throw
 * forbidden addresses at it, and if the policy had a hole the test must fail here, with no packet sent.
 */
export const TEST_GUARD = 'test-guard (PROXYD_TEST_HOOKS: loopback only)';

export function isLoopback(address: string): boolean {
  return inList(LOOPBACK_LIST, address);
}

/** For an IP-literal host under test hooks: refuse anything but loopback. */
export function testGuard(testHooks: boolean, host: string): string | undefined {
  return testHooks && net.isIP(host) !== 0 && !isLoopback(host) ? TEST_GUARD : undefined;
}

const LOOPBACK_LIST = rule('loopback', LOOPBACK).list;

/**
 * Under test hooks, `*.localhost` names are loopback (RFC 6761 §6.3, as curl and browsers resolve them)
 * without asking the system resolver, which here knows only `localhost`: tests reach several origins
 * by name (a.localhost, b.localhost) and a blocklist can name them. The answer still passes the policy.
 */
const LOCALHOST_NAME = /\.localhost\.?$/i;
function lookupLocalhost(_hostname: string, _options: dns.LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void): void {
  queueMicrotask(() => callback(null, [{ address: '127.0.0.1', family: 4 }]));
}
