// Every way the proxyd command refuses to start, through the real command: each is exactly one line on
// stderr, "proxyd: " and what is wrong, and exit code 2 — from yargs (unknown option, stray argument),
// the option table (a bad value, a repeated flag, a broken rule), the config file, the files it names
// (blocklist, auth file, TLS pair) and the listeners. A second line, a yargs block or a stack trace fails.
// One or two cases per path: what each parser says about each kind of bad value is tested in-process
// (option-parsers.test.ts); here it is the command that must say it in one line.
import t, { type Test } from 'tap';
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { BIN, tempDir } from './helpers/proxy.ts';

interface Outcome {
  /** The exit code, or the signal that ended it (the timeout's SIGTERM). */
  status: number | string | null;
  stdout: string;
  stderr: string;
}

/** Run the command to its end (bounded: killed after 20 s); async, so that a test's cases run side by side. */
/** The command: node and proxyd's bin, after `prefix` (a program that runs them). */
async function run(args: string[], { options = {} as SpawnOptions, prefix = [] as string[] } = {}): Promise<Outcome> {
  await takeSlot();
  try {
    const [program, ...rest] = [...prefix, process.execPath, BIN, ...args] as [string, ...string[]];
    const child = spawn(program, rest, { timeout: 60_000, ...options });
    const out: Outcome = { status: null, stdout: '', stderr: '' };
    child.stdout?.on('data', (d: Buffer) => (out.stdout += d));
    child.stderr?.on('data', (d: Buffer) => (out.stderr += d));
    return await new Promise((resolve) => child.once('close', (code, signal) => resolve(Object.assign(out, { status: code ?? signal }))));
  } finally {
    giveSlot();
  }
}

// Each command is about 0.6 s of CPU spent loading itself: a few at once keep two cores busy without
// making every one of them slow enough to hit its timeout on a host that is running other tests.
const AT_ONCE = 3;
let running = 0;
const waiting: (() => void)[] = [];

async function takeSlot(): Promise<void> {
  while (running >= AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
}

function giveSlot(): void {
  running--;
  waiting.shift()?.();
}

// About forty commands, a few at a time: more than the runner's default budget on a busy host.
t.setTimeout(300_000);

/** Exit 2, stderr exactly `proxyd: <message>` and one newline; stdout empty unless a logger already ran. */
async function refuses(t: Test, args: string[], message: string | RegExp, { stdoutEmpty = true, options = {} as SpawnOptions, prefix = [] as string[] } = {}) {
  const r = await run(args, { options, prefix });
  const label = args.join(' ');
  t.equal(r.status, 2, `${label}: exit 2`);
  t.equal(r.stderr.split('\n').length, 2, `${label}: one line on stderr, got ${JSON.stringify(r.stderr)}`);
  if (typeof message === 'string') t.equal(r.stderr, `proxyd: ${message}\n`, `${label}: ${message}`);
  else t.match(r.stderr, new RegExp(`^proxyd: ${message.source}\\n$`), `${label}: ${r.stderr.trim()}`);
  if (stdoutEmpty) t.equal(r.stdout, '', `${label}: nothing on stdout`);
}

/** What start-up needs besides the argument under test: a free port, no admin server, a log file of its own. */
function startArgs(...args: string[]): string[] {
  return ['--port', '0', '--admin', 'off', '--log-file', join(tempDir(), 'proxy.log'), ...args];
}

function file(name: string, content: string): string {
  const path = join(tempDir(), name);
  writeFileSync(path, content);
  return path;
}

async function occupiedPort(t: Test): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

t.test('the command line: unknown options and stray arguments', async (t) => {
  await Promise.all([
    refuses(t, ['--bogus'], 'unknown option --bogus (see proxyd --help)'),
    refuses(t, ['--bogus=1', '--port', '0'], 'unknown option --bogus (see proxyd --help)'),
    refuses(t, ['-x'], 'unknown option -x (see proxyd --help)'),
    refuses(t, ['--maxClients', '3'], 'unknown option --maxClients (see proxyd --help)'),
    refuses(t, ['--no-port'], 'unknown option --no-port (see proxyd --help)'),
    refuses(t, ['--constructor', '1'], 'unknown option --constructor (see proxyd --help)'), // a name yargs itself trips over
    refuses(t, ['--help=x'], '--help takes no value'),
    refuses(t, ['--version=x'], '--version takes no value'),
    refuses(t, ['foo'], 'unexpected argument "foo": the one command is check-config, and a config file goes after --config (see proxyd --help)'),
    refuses(t, ['check-config', 'proxyd.json'], 'unexpected argument "proxyd.json": the one command is check-config, and a config file goes after --config (see proxyd --help)'),
  ]);
});

t.test('a flag with a bad value names the flag and what it takes (in the file\'s words: --log-level too)', async (t) => {
  await Promise.all([
    refuses(t, ['--port', 'abc'], '--port must be a whole number from 0 to 65535, got "abc"'),
    refuses(t, ['--log-level', 'verbose'], '--log-level must be one of error, warn, info, debug, got "verbose"'),
    refuses(t, ['check-config', '--log-level', 'verbose'], '--log-level must be one of error, warn, info, debug, got "verbose"'),
    refuses(t, ['--queue-timeout', 'soon'], '--queue-timeout: "soon" is not a duration (use e.g. 500ms, 30s, 2m, 1h)'),
    refuses(t, ['--workers', '0x2'], '--workers must be a whole number from 0 to 256, got "0x2"'),
  ]);
});

t.test('a one-value flag given more than once is refused, naming every value', async (t) => {
  await Promise.all([
    refuses(t, ['--port', '8081', '--port', '8082'], '--port was given twice (8081, 8082); give it once'),
    refuses(t, ['--log-level', 'info', '--log-level', 'debug', '--log-level', 'warn'], '--log-level was given 3 times (info, debug, warn); give it once'),
    refuses(t, ['--config', 'a.json', '--config', 'b.json'], '--config was given twice (a.json, b.json); give it once'),
    refuses(t, ['--config'], '--config needs a file name'),
  ]);
});

t.test('rules that join two options', async (t) => {
  await Promise.all([
    refuses(t, ['--tls-cert', 'c.pem'], '--tls-key is missing: tls-cert and tls-key go together'),
    refuses(t, ['--admin', '0.0.0.0:9090'], '--admin 0.0.0.0:9090 is not a loopback address: that needs --auth-file (or reach the admin port through an SSH tunnel)'),
  ]);
});

t.test('the config file: unreadable, not JSON, an unknown key (--help named once), a bad value, a broken rule', async (t) => {
  const notJson = file('p.json', '{ not json');
  const unknown = file('p.json', '{"max-clientz": 1}');
  const bad = file('p.json', '{"idle-timeout": "forever"}');
  const rule = file('p.json', '{"tls-cert": "c.pem"}');
  await Promise.all([
    refuses(t, ['--config', '/nonexistent/proxyd.json'], 'config /nonexistent/proxyd.json: no such file'),
    refuses(t, ['--config', notJson], new RegExp(`config ${notJson}: not valid JSON \\(.+\\)`)),
    refuses(t, ['--config', unknown], `config ${unknown}: unknown key "max-clientz" (the keys are the flag names, see proxyd --help)`),
    refuses(t, ['--config', bad], `config ${bad}: key "idle-timeout": "forever" is not a duration (use e.g. 500ms, 30s, 2m, 1h)`),
    refuses(t, ['check-config', '--config', bad], `config ${bad}: key "idle-timeout": "forever" is not a duration (use e.g. 500ms, 30s, 2m, 1h)`),
    refuses(t, ['--config', rule], `config ${rule}: key "tls-key" is missing: tls-cert and tls-key go together`),
  ]);
});

/** Start-up and check-config read the same files, so they refuse the same way, in the same words. */
function bothRefuse(t: Test, args: string[], message: string | RegExp) {
  return Promise.all([refuses(t, startArgs(...args), message), refuses(t, ['check-config', ...args], message)]);
}

t.test('the files the options name: blocklist, auth file, TLS pair — start-up and check-config alike', async (t) => {
  const blocklist = file('block.txt', 'example.com\nnot a domain\n');
  const users = file('users', 'no colon here\n');
  const cert = file('c.pem', 'not a certificate\n');
  const key = file('k.pem', 'not a key\n');
  await Promise.all([
    bothRefuse(t, ['--blocklist', '/nonexistent/blocklist.txt'], 'blocklist /nonexistent/blocklist.txt: no such file'),
    bothRefuse(t, ['--blocklist', blocklist], `blocklist ${blocklist}: line 2: "not a domain" is not a domain name`),
    bothRefuse(t, ['--auth-file', users], `auth file ${users}: line 1: expected "user:hash"`),
    bothRefuse(t, ['--tls-cert', cert, '--tls-key', key], new RegExp(`TLS certificate ${cert}: does not load with key ${key} \\(.+\\)`)),
  ]);
});

t.test('the files proxyd writes: a log or access log it cannot create is refused before anything listens', async (t) => {
  const plain = file('plain.txt', 'a file, not a folder\n');
  const folder = tempDir();
  const logArgs = (log: string) => ['--port', '0', '--admin', 'off', '--log-file', log];
  await Promise.all([
    refuses(t, logArgs(join(plain, 'proxy.log')), `log file ${join(plain, 'proxy.log')}: cannot create it: ${plain} is not a folder`),
    refuses(t, ['check-config', '--log-file', join(plain, 'proxy.log')], `log file ${join(plain, 'proxy.log')}: cannot create it: ${plain} is not a folder`),
    refuses(t, logArgs(folder), `log file ${folder}: is a folder`),
    bothRefuse(t, ['--access-log', join(plain, 'a', 'access.log')], `access log ${join(plain, 'a', 'access.log')}: cannot create it: ${plain} is not a folder`),
  ]);
  // check-config creates nothing; a start creates the missing folders, as the logger would.
  const nested = join(tempDir(), 'new', 'logs', 'proxy.log');
  const checked = await run(['check-config', '--log-file', nested]);
  t.equal(checked.status, 0, 'check-config: a log file in folders still to be made is fine');
  t.notOk(existsSync(dirname(nested)), 'and it made none of them');
});

t.test('listening: the address in use, not on this machine, no such host; the admin port in use', async (t) => {
  const port = await occupiedPort(t);
  await Promise.all([
    refuses(t, ['--port', String(port), '--admin', 'off', '--log-file', join(tempDir(), 'proxy.log')], `cannot listen on 127.0.0.1:${port}: the address is in use`),
    refuses(t, startArgs('--host', '192.0.2.1'), 'cannot listen on 192.0.2.1: no such address on this machine'),
    refuses(t, startArgs('--host', 'no-such-host.invalid'), 'cannot listen on no-such-host.invalid: no such host'),
    // The admin address is taken first: nothing has listened, nothing is on stdout, no log file is made.
    refuses(t, ['--port', '0', '--log-file', join(tempDir(), 'proxy.log'), '--admin', `127.0.0.1:${port}`], `cannot start the admin server on 127.0.0.1:${port}: the address is in use (--admin off to run without it)`),
  ]);
});

// Root may bind any port: run the command as "nobody" then (which only root can do). Through `env -i`:
// tap hooks every child it sees spawned (NODE_OPTIONS), and its hook, run as nobody, would fail to
// write its record into the test's directory. Where the kernel lets anyone bind low ports, there is
// no such error to see.
const uid = process.getuid?.();
const unprivilegedFrom = existsSync('/proc/sys/net/ipv4/ip_unprivileged_port_start') ? Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) : 1024;
const lowPortSkip = uid === undefined ? 'no user ids here' : unprivilegedFrom <= 80 ? `anyone may bind ports from ${unprivilegedFrom} here` : false;
t.test('a port below 1024 without privileges', { skip: lowPortSkip }, async (t) => {
  const dir = tempDir();
  execFileSync('chmod', ['777', dir]);
  const options: SpawnOptions = uid === 0 ? { uid: 65534, gid: 65534 } : {};
  const prefix = ['/usr/bin/env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`];
  await refuses(t, ['--port', '80', '--admin', 'off', '--log-file', join(dir, 'proxy.log')], 'cannot listen on 127.0.0.1:80: permission denied (ports below 1024 need privileges)', { options, prefix });
});
