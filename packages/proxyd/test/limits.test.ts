// limits/ on its own, in this thread: who a client is, rates as written, and the ban rules (doubling,
// ceiling, exemption, one log line per ban) on real shared tables.
import t from 'tap';
import { LogRing } from '@proxyd/sync/log-ring';
import { Stats } from '@proxyd/sync/stats';
import { formatRate, parseRate } from '../src/config/rate.ts';
import { DEFAULTS, type ProxyOptions } from '../src/config/options.ts';
import { clientKey } from '../src/limits/client-key.ts';
import { ClientLimits, type LimitedClient } from '../src/limits/client-limits.ts';
import { EventLog } from '../src/memory/event-log.ts';
import { createLimitTables } from '../src/memory/limit-tables.ts';
import { STAT_NAMES } from '../src/memory/stats-names.ts';

t.test('a client is its IPv4 address, or its IPv6 network', async (t) => {
  t.equal(clientKey('203.0.113.7', 64), '203.0.113.7');
  t.equal(clientKey('::ffff:203.0.113.7', 64), '203.0.113.7', 'IPv4-mapped: the IPv4 address');
  t.equal(clientKey('2001:db8:1:2:3:4:5:6', 64), '2001:db8:1:2::/64', 'one /64, whatever the host part');
  t.equal(clientKey('2001:db8:1:2:ffff::1', 64), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:DB8::1', 48), '2001:db8::/48', '--ipv6-prefix 48');
  t.equal(clientKey('2001:db8::1', 128), '2001:db8::1', '--ipv6-prefix 128: each address');
});

t.test('rates: 50/s, 3000/m, 100/h, off', async (t) => {
  t.same(parseRate('50/s'), { ok: true, value: 50 });
  t.same(parseRate('3000/m'), { ok: true, value: 50 });
  t.same(parseRate('off'), { ok: true, value: undefined });
  t.match(parseRate('fast'), { ok: false, problem: /not a rate/ });
  t.match(parseRate('0/s'), { ok: false });
  t.equal(formatRate(1.5), '90/m');
  t.equal(formatRate(1 / 36), '100/h');
  t.equal(formatRate(undefined), 'off');
});

function limitsWith(overrides: Partial<ProxyOptions>) {
  const stats = Stats.create(STAT_NAMES);
  const ring = LogRing.create(1 << 16);
  const records: Record<string, unknown>[] = [];
  const options = { ...DEFAULTS, ...overrides };
  const limits = new ClientLimits({ limits: createLimitTables(), stats, log: new EventLog(ring, () => 3) }, () => options);
  const drain = () => {
    ring.drain((bytes) => records.push(JSON.parse(Buffer.from(bytes).toString()) as Record<string, unknown>));
    return records;
  };
  return { limits, stats, drain };
}

const client = (address: string): LimitedClient => ({ key: address, address, limitSlot: -1, limitHash: 0n });

t.test('a detector bans at its threshold, once; a repeat doubles up to the ceiling; lifting forgets', async (t) => {
  const { limits, stats, drain } = limitsWith({ banExempt: ['none'], banBadRequests: 3, banTimeMs: 1000, banTimeMaxMs: 2500 });
  const c = client('198.51.100.1');
  t.same([limits.note(c, 'bad-requests'), limits.note(c, 'bad-requests')], ['counted', 'counted']);
  t.equal(limits.note(c, 'bad-requests'), 'banned', 'the third bans');
  t.equal(limits.note(c, 'bad-requests'), 'banned', 'and the fourth finds it banned');
  t.equal(drain().filter((r) => r.event === 'ban').length, 1, 'one ban line for both');
  t.equal(stats.get('bans'), 1);
  t.equal(stats.get('bansBadRequests'), 1);
  const first = limits.bannedFor(c.key);
  t.ok(first > 900 && first <= 1000, `banned for ${first} ms`);
  t.equal(limits.bannedFor('198.51.100.2'), 0, 'another client is not');
  t.ok(limits.lift(c.key, 'test'), 'lifted');
  t.equal(limits.bannedFor(c.key), 0);
  t.match(drain().at(-1), { event: 'unban', key: c.key, by: 'test' });
  limits.note(c, 'bad-requests'); // still over the window's count: banned again, as a first offence (lifting forgave)
  t.equal(drain().filter((r) => r.event === 'ban').map((r) => r.banTime).join(), '1s,1s', 'after a lift the next ban is a first offence again');
});

t.test('doubling and its ceiling', async (t) => {
  const { limits, drain } = limitsWith({ banExempt: ['none'], banBadRequests: 1, banTimeMs: 50, banTimeMaxMs: 150 });
  const c = client('198.51.100.3');
  for (let i = 0; i < 4; i++) {
    t.equal(limits.note(c, 'bad-requests'), 'banned');
    const left = limits.bannedFor(c.key);
    await new Promise((r) => setTimeout(r, left + 20));
  }
  t.same(drain().filter((r) => r.event === 'ban').map((r) => [r.banTime, r.offence]), [['50ms', 1], ['100ms', 2], ['150ms', 3], ['150ms', 4]], '50, 100, then the 150 ms ceiling');
});

t.test('an exempt client is "over", never banned; --ban-time 0 bans nobody', async (t) => {
  const exempt = limitsWith({ banBadRequests: 1 }); // default exemption: loopback
  t.equal(exempt.limits.note(client('127.0.0.1'), 'bad-requests'), 'over');
  t.equal(exempt.limits.bannedFor('127.0.0.1'), 0);
  const off = limitsWith({ banExempt: ['none'], banBadRequests: 1, banTimeMs: 0 });
  t.equal(off.limits.note(client('198.51.100.4'), 'bad-requests'), 'over');
  t.equal(off.drain().filter((r) => r.event === 'ban').length, 0);
  const disabled = limitsWith({ banExempt: ['none'], banBadRequests: 0 });
  t.equal(disabled.limits.note(client('198.51.100.5'), 'bad-requests'), 'off', 'threshold 0: the detector is off');
});

t.test('--redis: a fleet ban is applied once and marked; allowed requests are counted for the fleet; a fleet verdict refuses', async (t) => {
  const { limits, stats, drain } = limitsWith({ redis: 'redis://127.0.0.1:6379', rateLimit: 10, rateBurst: 3 });
  const ban = { key: '198.51.100.7', detector: 'scan', offences: 2, leftMs: 5000, origin: 'other-host:3128' };
  t.equal(limits.applyBan(ban), true, 'a ban from the fleet is applied');
  t.equal(limits.applyBan({ ...ban, leftMs: 4800 }), false, 'the same ban again (a reconnect reload): nothing');
  t.ok(limits.bannedFor('198.51.100.7') > 4900, 'enforced by the same check as a local ban');
  t.match(limits.bans(), [{ key: '198.51.100.7', detector: 'scan', offences: 2, origin: 'fleet' }]);
  const lines = drain().filter((r) => r.event === 'ban');
  t.equal(lines.length, 1, 'logged once');
  t.match(lines[0], { level: 'warn', client: '198.51.100.7', detector: 'scan', origin: 'other-host:3128', fleet: true });
  t.equal(stats.get('fleetBansApplied'), 1);
  t.equal(stats.get('bans'), 0, 'not counted as a ban made here');
  t.equal(limits.applyBan({ ...ban, key: '127.0.0.1' }), false, 'a key this instance exempts (loopback, by default) is not banned');
  t.equal(limits.applyBan({ ...ban, key: '198.51.100.10', leftMs: 1e12 }), true);
  t.ok(limits.bannedFor('198.51.100.10') <= DEFAULTS.banTimeMaxMs, 'never longer than this instance\'s --ban-time-max');

  const c = client('198.51.100.8');
  t.same([limits.takeRequest(c), limits.takeRequest(c), limits.takeRequest(c)], [0, 0, 0], 'the burst of three');
  t.ok(limits.takeRequest(c) > 0, 'the fourth waits (the local GCRA)');
  t.same(limits.takeFleetCounts(), [{ key: '198.51.100.8', count: 3 }], 'three allowed requests to add to the store; the refused one is not counted');
  t.same(limits.takeFleetCounts(), [], 'taken: zero again');
  limits.limitFleet('198.51.100.8', 2000);
  const d = client('198.51.100.8');
  const wait = limits.takeRequest(d);
  t.ok(wait > 1900 && wait <= 2000, `the fleet says over: refused for ${wait} ms`);
  t.equal(stats.get('fleetRateLimited'), 1);
});

t.test('without --redis nothing is counted for a fleet', async (t) => {
  const { limits } = limitsWith({ rateLimit: 10, rateBurst: 3 });
  const c = client('198.51.100.9');
  limits.takeRequest(c);
  limits.takeRequest(c);
  t.same(limits.takeFleetCounts(), []);
  t.match(limits.bans(), []);
});
