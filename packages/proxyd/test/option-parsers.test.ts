// The small parsers behind the options, tested on their own (before, only spawned proxies reached them),
// and then at the option level: each bad value becomes an OptionError that names its option as data.
import t, { type Test } from 'tap';
import { parseCidr } from '../src/config/cidr-list.ts';
import { parseConfigText } from '../src/config/config-file.ts';
import { formatDuration, parseDuration } from '../src/config/duration.ts';
import { parseFlags, type RawFlags } from '../src/config/flags.ts';
import { formatHostPort, parseHostPort } from '../src/config/host-port.ts';
import { OptionError } from '../src/config/option-error.ts';
import { formatPortList, parsePortList } from '../src/config/port-list.ts';
import { resolveOptions } from '../src/config/resolve-options.ts';
import { parseWholeNumber } from '../src/config/whole-number.ts';
import { parseRedisUrl, redactRedisUrl } from '../src/config/redis-url.ts';

/** The OptionError `fn` throws (fails the test if it throws anything else, or nothing). */
function optionError(t: Test, fn: () => unknown): OptionError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof OptionError) return err;
    t.fail(`threw ${String(err)}, not an OptionError`);
    return undefined;
  }
  t.fail('did not throw');
  return undefined;
}

function flagError(t: Test, flags: RawFlags) {
  return optionError(t, () => parseFlags(flags));
}

function configError(t: Test, json: unknown) {
  return optionError(t, () => parseConfigText(JSON.stringify(json), '/etc/proxyd/proxyd.json'));
}

t.test('durations: units, bare seconds, decimals, zero only where allowed, too long, garbage', async (t) => {
  t.same(parseDuration('500ms'), { ok: true, value: 500 });
  t.same(parseDuration('30s'), { ok: true, value: 30_000 });
  t.same(parseDuration('2m'), { ok: true, value: 120_000 });
  t.same(parseDuration('1h'), { ok: true, value: 3_600_000 });
  t.same(parseDuration('45'), { ok: true, value: 45_000 }, 'a bare number is seconds');
  t.same(parseDuration(' 10 s '), { ok: true, value: 10_000 }, 'blanks around and before the unit');
  t.same(parseDuration('1.5s'), { ok: true, value: 1500 });
  t.same(parseDuration('0.5'), { ok: true, value: 500 });
  t.same(parseDuration('2.5ms'), { ok: true, value: 3 }, 'rounded to whole milliseconds');
  t.same(parseDuration('0', { allowZero: true }), { ok: true, value: 0 });
  t.same(parseDuration('0ms', { allowZero: true }), { ok: true, value: 0 });
  t.match(parseDuration('0'), { ok: false, problem: 'must be at least 1ms, got "0"' }, 'zero is refused unless allowed');
  t.match(parseDuration('0.2ms'), { ok: false, problem: /at least 1ms/ }, 'what rounds to zero is zero');
  t.same(parseDuration('596h'), { ok: true, value: 596 * 3_600_000 }, 'just under the timer limit (2^31-1 ms, 596.5h)');
  t.same(parseDuration('2147483647ms'), { ok: true, value: 2 ** 31 - 1 }, 'the limit itself');
  t.same(parseDuration('2147483648ms'), { ok: false, value: '2147483648ms', problem: 'is too long (at most 24 days)' });
  t.same(parseDuration('597h'), { ok: false, value: '597h', problem: 'is too long (at most 24 days)' });
  t.same(parseDuration('25d'), { ok: false, value: '25d', problem: 'is not a duration (use e.g. 500ms, 30s, 2m, 1h)' });
  t.match(parseDuration('99999999999999999999'), { ok: false, problem: /too long/ });
  for (const garbage of ['soon', '', '-1s', '1e3', '1.s', '.5s', '5 minutes', '1h30m', 'NaN']) {
    t.match(parseDuration(garbage), { ok: false, value: garbage, problem: /is not a duration/ }, JSON.stringify(garbage));
  }
});

t.test('formatDuration: the largest exact unit, and it reads back', async (t) => {
  t.equal(formatDuration(0), '0s');
  t.equal(formatDuration(1500), '1500ms');
  t.equal(formatDuration(30_000), '30s');
  t.equal(formatDuration(90_000), '90s');
  t.equal(formatDuration(120_000), '2m');
  t.equal(formatDuration(7_200_000), '2h');
  for (const ms of [1, 999, 1000, 1500, 59_000, 60_000, 61_000, 3_600_000, 5_400_000, 2 ** 31 - 1]) {
    t.same(parseDuration(formatDuration(ms)), { ok: true, value: ms }, `${ms} round-trips`);
  }
});

t.test('port lists: single ports, ranges, and every way to get one wrong', async (t) => {
  t.same(parsePortList('443'), { ok: true, value: [[443, 443]] });
  t.same(parsePortList('443, 8443 ,9000-9099'), { ok: true, value: [[443, 443], [8443, 8443], [9000, 9099]] });
  t.same(parsePortList('1-65535'), { ok: true, value: [[1, 65535]] });
  t.same(parsePortList('80-80'), { ok: true, value: [[80, 80]] });
  t.same(parsePortList('9099-9000'), { ok: false, value: '9099-9000', problem: 'is a range that runs backwards' });
  t.same(parsePortList('443,,80'), { ok: false, value: '443,,80', problem: 'has an empty entry' });
  t.same(parsePortList(''), { ok: false, value: '', problem: 'has an empty entry' });
  t.same(parsePortList('443,'), { ok: false, value: '443,', problem: 'has an empty entry' });
  t.same(parsePortList('0'), { ok: false, value: '0', problem: 'is not a port (1-65535)' });
  t.same(parsePortList('65536'), { ok: false, value: '65536', problem: 'is not a port (1-65535)' });
  t.same(parsePortList('0-80'), { ok: false, value: '0', problem: 'is not a port (1-65535)' });
  t.same(parsePortList('1-2-3'), { ok: false, value: '1-2-3', problem: 'is not a port or a range like 9000-9099' });
  t.same(parsePortList('https'), { ok: false, value: 'https', problem: 'is not a port (1-65535)' });
  t.same(parsePortList('none'), { ok: false, value: 'none', problem: 'is not a port (1-65535)' }, '"none" only where allowed');
  t.same(parsePortList('none', { noneAllowed: true }), { ok: true, value: [] });
  t.same(parsePortList(' none ', { noneAllowed: true }), { ok: true, value: [] });
});

t.test('formatPortList reads back as the same list', async (t) => {
  t.equal(formatPortList([[443, 443], [8443, 8443], [9000, 9099]]), '443,8443,9000-9099');
  t.equal(formatPortList([]), '');
  for (const text of ['443', '19,21-23,25,110', '1-65535', '80,443,8000-8999,65535']) {
    const parsed = parsePortList(text);
    t.ok(parsed.ok);
    if (parsed.ok) t.equal(formatPortList(parsed.value), text, `${text} round-trips`);
  }
});

t.test('CIDR ranges: addresses and prefixes of both families, and bad ones', async (t) => {
  for (const good of ['10.0.0.0/8', '203.0.113.7/32', '203.0.113.7', '0.0.0.0/0', 'fd00::/8', '::1', '::1/128', '::/0']) {
    t.same(parseCidr(good), { ok: true, value: good }, good);
  }
  t.same(parseCidr('nonsense'), { ok: false, value: 'nonsense', problem: 'is not an IP address or CIDR range' });
  t.same(parseCidr('10.0.0.0/8/8'), { ok: false, value: '10.0.0.0/8/8', problem: 'is not an IP address or CIDR range' });
  t.same(parseCidr('256.0.0.0/8'), { ok: false, value: '256.0.0.0/8', problem: 'is not an IP address or CIDR range' });
  t.same(parseCidr('10.0.0.0/33'), { ok: false, value: '10.0.0.0/33', problem: 'has a bad prefix length' });
  t.same(parseCidr('fd00::/129'), { ok: false, value: 'fd00::/129', problem: 'has a bad prefix length' });
  t.same(parseCidr('10.0.0.0/'), { ok: false, value: '10.0.0.0/', problem: 'has a bad prefix length' });
  t.same(parseCidr('10.0.0.0/-1'), { ok: false, value: '10.0.0.0/-1', problem: 'has a bad prefix length' });
  t.same(parseCidr('any'), { ok: false, value: 'any', problem: 'is not an IP address or CIDR range' }, '"any" is not a range');
});

t.test('CIDR list options: comma-separated and repeated, "any" for allow-client only', async (t) => {
  t.same(parseFlags({ 'allow-client': ['203.0.113.0/24,198.51.100.7', ' 2001:db8::/32 '] }).allowClient, ['203.0.113.0/24', '198.51.100.7', '2001:db8::/32']);
  t.same(parseFlags({ 'allow-client': ['any'] }).allowClient, ['any']);
  t.same(parseFlags({ 'allow-client': ['ANY'] }).allowClient, ['ANY'], 'any case; the policy compares it the same way');
  t.same(parseFlags({ 'allow-dest': ['127.0.0.0/8,', ''] }).allowDest, ['127.0.0.0/8'], 'blank entries are dropped');
  t.same(parseConfigText('{"allow-dest": "127.0.0.0/8,::1"}', 'f').allowDest, ['127.0.0.0/8', '::1'], 'a string in the file');
  t.same(parseConfigText('{"allow-dest": ["127.0.0.0/8", "::1"]}', 'f').allowDest, ['127.0.0.0/8', '::1'], 'a list in the file');
  t.match(flagError(t, { 'allow-dest': ['any'] }), { option: 'allow-dest', source: 'flag', value: 'any', problem: 'is not an IP address or CIDR range' });
  t.match(flagError(t, { 'allow-client': ['10.0.0.0/8', '10.0.0.0/33'] }), { option: 'allow-client', value: '10.0.0.0/33', problem: 'has a bad prefix length' });
  const e = configError(t, { 'allow-dest': ['nonsense'] });
  t.match(e, { option: 'allow-dest', source: 'config', file: '/etc/proxyd/proxyd.json', value: 'nonsense' });
  t.equal(e?.message, 'config /etc/proxyd/proxyd.json: key "allow-dest": "nonsense" is not an IP address or CIDR range');
  t.match(configError(t, { 'allow-client': 5 }), { option: 'allow-client', source: 'config', value: undefined, problem: 'must be a string or a list of strings' });
  t.match(configError(t, { 'allow-client': ['10.0.0.1', 5] }), { option: 'allow-client', problem: 'must be a string or a list of strings' });
});

t.test('host:port for --admin: IPv4, names, bracketed IPv6, "off", and bad ones', async (t) => {
  t.same(parseHostPort('127.0.0.1:9090'), { ok: true, value: { host: '127.0.0.1', port: 9090 } });
  t.same(parseHostPort('localhost:0'), { ok: true, value: { host: 'localhost', port: 0 } }, 'port 0: any free port');
  t.same(parseHostPort('[::1]:9090'), { ok: true, value: { host: '::1', port: 9090 } });
  t.same(parseHostPort('[::ffff:127.0.0.1]:65535'), { ok: true, value: { host: '::ffff:127.0.0.1', port: 65535 } });
  t.same(parseHostPort('off', { offAllowed: true }), { ok: true, value: undefined });
  t.match(parseHostPort('off'), { ok: false }, '"off" only where allowed');
  for (const bad of ['::1:9090', '[::1]', '127.0.0.1', '127.0.0.1:65536', '127.0.0.1:', ':9090', 'host:port', '[nope]:1', '']) {
    t.same(parseHostPort(bad, { offAllowed: true }), { ok: false, problem: `must be host:port (e.g. 127.0.0.1:9090) or "off", got "${bad}"` }, JSON.stringify(bad));
  }
  for (const address of [{ host: '127.0.0.1', port: 9090 }, { host: '::1', port: 0 }, undefined]) {
    t.same(parseHostPort(formatHostPort(address), { offAllowed: true }), { ok: true, value: address }, `${formatHostPort(address)} round-trips`);
  }
  t.same(parseFlags({ admin: '[::1]:9090' }).admin, { host: '::1', port: 9090 });
  t.same(parseFlags({ admin: 'off' }), { admin: undefined }, '"off" is a value that is set: it overrides the default');
  t.match(flagError(t, { admin: '[::1]' }), { option: 'admin', source: 'flag', problem: /must be host:port/ });
  t.equal(flagError(t, { admin: 'nowhere' })?.message, '--admin must be host:port (e.g. 127.0.0.1:9090) or "off", got "nowhere"');
});

t.test('whole numbers: the range, both ends, and what is not a whole number', async (t) => {
  t.same(parseWholeNumber('0', 0, 65535), { ok: true, value: 0 });
  t.same(parseWholeNumber('65535', 0, 65535), { ok: true, value: 65535 });
  t.same(parseWholeNumber(' 42 ', 0, 65535), { ok: true, value: 42 });
  // Number() would read the last five as 80, 3, 8080, 1000 and 31.
  for (const bad of ['-1', '65536', '1.5', 'abc', '', ' ', 'NaN', 'Infinity', '0x50', '0b11', '8.08e3', '1e3', '0o37']) {
    t.same(parseWholeNumber(bad, 0, 65535), { ok: false, problem: `must be a whole number from 0 to 65535, got "${bad}"` }, JSON.stringify(bad));
  }
  t.same(parseFlags({ port: '8080', 'max-clients': '1' }), { port: 8080, maxClients: 1 });
  t.same(parseConfigText('{"port": 8080, "max-waiting": "0"}', 'f'), { port: 8080, maxWaiting: 0 }, 'a JSON number or a string');
  const e = flagError(t, { port: 'abc' });
  t.match(e, { option: 'port', source: 'flag', value: undefined, problem: 'must be a whole number from 0 to 65535, got "abc"' });
  t.equal(e?.message, '--port must be a whole number from 0 to 65535, got "abc"');
  const twice = flagError(t, { port: ['1', '2'] });
  t.match(twice, { option: 'port', source: 'flag', problem: 'was given twice (1, 2); give it once' }, 'a one-value flag given twice is refused, not read as its last value');
  t.equal(twice?.message, '--port was given twice (1, 2); give it once');
  t.match(flagError(t, { 'connect-ports': ['443', '8443', '9000-9099'] }), { option: 'connect-ports', problem: 'was given 3 times (443, 8443, 9000-9099); give it once' }, 'a port list is one value: 443,8443');
  t.match(configError(t, { 'max-clients': 0 }), { option: 'max-clients', source: 'config', problem: 'must be a whole number from 1 to 100000, got "0"' });
  t.match(configError(t, { 'log-max-files': 2.5 }), { option: 'log-max-files', problem: /got "2.5"/ });
  t.match(configError(t, { port: true }), { option: 'port', problem: 'must be a string or a number' });
  t.match(configError(t, { port: null }), { option: 'port', problem: 'must be a string or a number' });
});

t.test('choices: --log-level takes one of its words', async (t) => {
  t.same(parseFlags({ 'log-level': 'debug' }), { logLevel: 'debug' });
  const e = configError(t, { 'log-level': 'loud' });
  t.match(e, { option: 'log-level', source: 'config', problem: 'must be one of error, warn, info, debug, got "loud"' });
  t.equal(e?.message, 'config /etc/proxyd/proxyd.json: key "log-level" must be one of error, warn, info, debug, got "loud"');
  t.match(flagError(t, { 'log-level': 'INFO' }), { option: 'log-level', source: 'flag' }, 'case matters');
});

t.test('durations and port lists at the option level: name, source and bad text as data', async (t) => {
  t.same(parseFlags({ 'queue-timeout': '10s', 'status-interval': '0', 'shutdown-grace': '0' }), { queueTimeoutMs: 10_000, statusIntervalMs: 0, shutdownGraceMs: 0 });
  t.same(parseConfigText('{"queue-timeout": 30, "idle-timeout": "2m", "upstream-timeout": 1.5}', 'f'), { queueTimeoutMs: 30_000, idleTimeoutMs: 120_000, upstreamTimeoutMs: 1500 }, 'a JSON number is seconds');
  const e = flagError(t, { 'queue-timeout': 'soon' });
  t.match(e, { option: 'queue-timeout', source: 'flag', file: undefined, value: 'soon', problem: /^is not a duration/ });
  t.equal(e?.message, '--queue-timeout: "soon" is not a duration (use e.g. 500ms, 30s, 2m, 1h)');
  t.match(flagError(t, { 'idle-timeout': '0' }), { option: 'idle-timeout', problem: 'must be at least 1ms, got "0"' }, 'zero where it is not allowed');
  t.match(configError(t, { 'idle-timeout': 'forever' }), { option: 'idle-timeout', source: 'config', value: 'forever' });
  t.match(flagError(t, { 'connect-ports': '443,99999' }), { option: 'connect-ports', value: '99999', problem: 'is not a port (1-65535)' });
  t.match(flagError(t, { 'connect-ports': 'none' }), { option: 'connect-ports', value: 'none' }, 'connect-ports has no "none"');
  t.same(parseFlags({ 'blocked-http-ports': 'none' }), { blockedHttpPorts: [] });
  t.same(parseConfigText('{"connect-ports": 8443}', 'f'), { connectPorts: [[8443, 8443]] }, 'a JSON number is one port');
});

t.test('--redis: redis:// or rediss:// with a host, "off", and a clear error otherwise; a password never shown', async (t) => {
  t.same(parseRedisUrl('redis://10.0.0.7:6379'), { ok: true, value: 'redis://10.0.0.7:6379' });
  t.same(parseRedisUrl('rediss://:secret@cache.example.internal:6379/2'), { ok: true, value: 'rediss://:secret@cache.example.internal:6379/2' }, 'TLS, a password, a database number');
  t.same(parseRedisUrl('off'), { ok: true, value: undefined });
  t.same(parseFlags({ redis: 'redis://127.0.0.1:6379' }), { redis: 'redis://127.0.0.1:6379' });
  t.equal(flagError(t, { redis: 'http://10.0.0.7:6379' })?.message, '--redis must start with redis:// or rediss:// (TLS), got "http://…"');
  t.match(flagError(t, { redis: '10.0.0.7:6379' }), { option: 'redis', problem: /redis:\/\/ or rediss:\/\// }, 'no scheme');
  t.match(flagError(t, { redis: 'redis://' }), { option: 'redis', problem: /needs a host|redis:\/\/ or rediss:\/\// });
  t.match(flagError(t, { redis: 'redis://h:6379/cache' }), { option: 'redis', problem: /database number/ });
  t.match(configError(t, { redis: 'redis://user:hunter2@h:6379/x' }), { option: 'redis', source: 'config' });
  t.notMatch(String(configError(t, { redis: 'ftp://user:hunter2@h' })?.message), /hunter2/, 'the error does not repeat the password');
  t.equal(redactRedisUrl('rediss://default:hunter2@h:6379'), 'rediss://default:***@h:6379');
  t.equal(redactRedisUrl('redis://h:6379'), 'redis://h:6379');
});

t.test('optional files and text: "" unsets a file, the host may not be empty, the realm loses quotes', async (t) => {
  t.same(parseFlags({ 'auth-file': '' }), { authFile: undefined });
  t.same(parseFlags({ blocklist: '/etc/proxyd/blocklist.txt' }), { blocklistFile: '/etc/proxyd/blocklist.txt' });
  t.same(parseFlags({ 'auth-realm': 'a "quoted\\" realm' }), { authRealm: 'a quoted realm' });
  t.match(flagError(t, { host: ' ' }), { option: 'host', problem: 'must not be empty' });
  t.match(configError(t, { 'log-file': '' }), { option: 'log-file', source: 'config', problem: 'must not be empty' });
});

t.test('the config file as a whole: unknown keys, not JSON, not an object — no option to name', async (t) => {
  t.match(configError(t, { 'max-clientz': 1 }), { option: undefined, source: 'config', problem: /^unknown key "max-clientz"/ });
  t.match(configError(t, { 'max-clientz': 1, port: 'abc' }), { option: undefined, problem: /unknown key/ }, 'an unknown key is reported before a bad value');
  t.match(optionError(t, () => parseConfigText('{ not json', 'f')), { option: undefined, file: 'f', problem: /^not valid JSON/ });
  t.match(optionError(t, () => parseConfigText('[1]', 'f')), { option: undefined, problem: 'must be a JSON object of options' });
  t.same(parseConfigText('{"admin": "off"}', 'f'), { admin: undefined }, 'a key set to a value that is undefined is still set');
});

t.test('cross-option rule: a non-loopback --admin needs --auth-file, so check-config says what start-up would', async (t) => {
  const admin = (host: string) => ({ admin: { host, port: 9090 } });
  t.match(optionError(t, () => resolveOptions(undefined, admin('0.0.0.0'))), { option: 'admin', source: 'flag', problem: /is not a loopback address: that needs --auth-file/ });
  t.match(optionError(t, () => resolveOptions(undefined, admin('::'))), { option: 'admin' });
  t.match(optionError(t, () => resolveOptions({ file: 'p.json', values: admin('192.0.2.7') }, {})), { option: 'admin', source: 'config', file: 'p.json' });
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) t.same(resolveOptions(undefined, admin(host)).admin, { host, port: 9090 }, `${host} is loopback`);
  t.same(resolveOptions(undefined, { ...admin('0.0.0.0'), authFile: 'users.htpasswd' }).admin, { host: '0.0.0.0', port: 9090 }, 'with --auth-file it is allowed');
  t.equal(resolveOptions(undefined, { admin: undefined }).admin, undefined, '"off" needs nothing');
});

t.test('cross-option rules: tls-cert and tls-key go together, blamed on the file or the flags', async (t) => {
  const both = resolveOptions(undefined, parseFlags({ 'tls-cert': 'c.pem', 'tls-key': 'k.pem' }));
  t.match(both, { tlsCert: 'c.pem', tlsKey: 'k.pem' });
  t.match(optionError(t, () => resolveOptions(undefined, { tlsCert: 'c.pem' })), { option: 'tls-key', source: 'flag', problem: 'is missing: tls-cert and tls-key go together' });
  t.match(optionError(t, () => resolveOptions(undefined, { tlsKey: 'k.pem' })), { option: 'tls-cert', source: 'flag' });
  const fromFile = optionError(t, () => resolveOptions({ file: 'p.json', values: { tlsCert: 'c.pem' } }, { tlsKey: 'k.pem' }));
  t.match(fromFile, { option: 'tls-key', source: 'config', file: 'p.json' }, 'the file on its own must make sense, even when flags would complete it');
  t.equal(fromFile?.message, 'config p.json: key "tls-key" is missing: tls-cert and tls-key go together');
  t.match(optionError(t, () => resolveOptions({ file: 'p.json', values: { tlsCert: 'c.pem', tlsKey: 'k.pem' } }, { tlsKey: undefined })), { option: 'tls-key', source: 'flag' }, 'flags that break a good file are blamed on the flags');
});

t.test('layers: defaults < file < flags, and a result of its own', async (t) => {
  const options = resolveOptions({ file: 'p.json', values: { port: 9000, maxClients: 64 } }, { port: 9001 });
  t.equal(options.port, 9001);
  t.equal(options.maxClients, 64);
  t.equal(options.idleTimeoutMs, 120_000);
  options.allowClient.push('10.9.9.9');
  t.same(resolveOptions(undefined, {}).allowClient, [], "mutating one result does not change the next one's defaults");
});
