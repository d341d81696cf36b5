// How an upstream failure is answered and counted: the socket or DNS error code → the refusal (and so
// the status: 502 or 504), the kind logged, the words in the body (src/worker/upstream-errors.ts); the
// kind → the Stats counter (upstreamErrorStat), and the method and status counters (methodStat,
// statusStat in src/memory/stats-names.ts).
import t from 'tap';
import net from 'node:net';
import { classifyUpstreamError, failUnlessConnectedWithin, upstreamTimeoutError } from '../src/worker/upstream-errors.ts';
import { methodStat, statusStat, upstreamErrorStat, STAT_NAMES } from '../src/memory/stats-names.ts';
import { REFUSALS } from '../src/policy/refusals.ts';

function errorWith(code: string | undefined, message = `failed with ${code}`): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(message);
  if (code !== undefined) err.code = code;
  return err;
}

/** What the client is answered and what is counted, the way request-gate.ts puts them together. */
function outcome(code: string | undefined, message?: string) {
  const { refusal, kind, what } = classifyUpstreamError(errorWith(code, message));
  return { status: REFUSALS[refusal].status, refusal, kind, what, stat: upstreamErrorStat(kind) };
}

t.test('socket and DNS errors: 502 when the destination cannot be reached, 504 when it is too slow', async (t) => {
  const cases: [string, ReturnType<typeof outcome>][] = [
    ['ECONNREFUSED', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'ECONNREFUSED', what: 'connection refused', stat: 'upstreamRefused' }],
    ['ECONNRESET', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'ECONNRESET', what: 'connection reset by the destination', stat: 'upstreamReset' }],
    ['EPIPE', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'EPIPE', what: 'connection closed by the destination', stat: 'upstreamReset' }],
    ['ENOTFOUND', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'ENOTFOUND', what: 'name does not resolve', stat: 'upstreamDns' }],
    ['EAI_AGAIN', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'EAI_AGAIN', what: 'name lookup failed temporarily', stat: 'upstreamDns' }],
    ['EHOSTUNREACH', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'EHOSTUNREACH', what: 'host unreachable', stat: 'upstreamOther' }],
    ['ENETUNREACH', { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'ENETUNREACH', what: 'network unreachable', stat: 'upstreamOther' }],
    ['ETIMEDOUT', { status: 504, refusal: 'UPSTREAM_TIMEOUT', kind: 'ETIMEDOUT', what: 'timed out', stat: 'upstreamTimeout' }],
    ['UPSTREAM_TIMEOUT', { status: 504, refusal: 'UPSTREAM_TIMEOUT', kind: 'UPSTREAM_TIMEOUT', what: 'no answer within the upstream timeout', stat: 'upstreamTimeout' }],
  ];
  for (const [code, expected] of cases) t.same(outcome(code), expected, code);
});

t.test("undici's names for the same failures are answered, logged and counted as Node's", async (t) => {
  t.same(outcome('UND_ERR_SOCKET', 'other side closed'), outcome('ECONNRESET'), 'UND_ERR_SOCKET is a reset');
  for (const code of ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) {
    t.same(outcome(code), outcome('UPSTREAM_TIMEOUT'), `${code} is an upstream timeout (504)`);
  }
});

t.test('an unknown code, or none: 502, logged under its own code with its own message, counted as other', async (t) => {
  t.same(outcome('EPROTO', 'write EPROTO 1234:error:0A00010B:SSL routines'), {
    status: 502,
    refusal: 'UPSTREAM_UNREACHABLE',
    kind: 'EPROTO',
    what: 'write EPROTO 1234:error:0A00010B:SSL routines',
    stat: 'upstreamOther',
  });
  t.same(outcome(undefined, 'something broke'), { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'ERROR', what: 'something broke', stat: 'upstreamOther' });
  // Codes are matched as Node spells them: another spelling is a code of its own.
  t.same(outcome('econnrefused', 'lower-case code'), { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: 'econnrefused', what: 'lower-case code', stat: 'upstreamOther' });
  t.same(outcome('', 'empty code'), { status: 502, refusal: 'UPSTREAM_UNREACHABLE', kind: '', what: 'empty code', stat: 'upstreamOther' });
});

t.test('upstreamTimeoutError is the error failUnlessConnectedWithin destroys a slow socket with', async (t) => {
  const err = upstreamTimeoutError();
  t.equal(err.code, 'UPSTREAM_TIMEOUT');
  t.equal(outcome(err.code).status, 504);

  // A socket that never connects (never dialled here: nothing leaves the machine).
  const stuck = new net.Socket();
  const failed = new Promise<NodeJS.ErrnoException>((resolve) => stuck.once('error', resolve));
  const started = Date.now();
  failUnlessConnectedWithin(stuck, 100);
  t.equal((await failed).code, 'UPSTREAM_TIMEOUT', 'not connected within 100 ms: destroyed with an upstream timeout');
  t.ok(Date.now() - started >= 95, `after ${Date.now() - started} ms, not before the limit`);
  t.ok(stuck.destroyed);

  // A socket that connects in time is left alone after the limit.
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => void server.close());
  const quick = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => void quick.destroy());
  const errors: Error[] = [];
  quick.on('error', (e) => errors.push(e));
  failUnlessConnectedWithin(quick, 100);
  await new Promise((r) => quick.once('connect', r));
  await new Promise((r) => setTimeout(r, 250));
  t.same(errors, [], 'no error after the limit');
  t.notOk(quick.destroyed, 'still open');
});

t.test('methodStat: GET, POST, HEAD and CONNECT have counters of their own; methods are case-sensitive', async (t) => {
  const cases: [string | undefined, string][] = [
    ['GET', 'methodGet'],
    ['POST', 'methodPost'],
    ['CONNECT', 'methodConnect'],
    ['HEAD', 'methodHead'],
    ['PUT', 'methodOther'],
    ['DELETE', 'methodOther'],
    ['OPTIONS', 'methodOther'],
    ['get', 'methodOther'], // RFC 9110 §9.1: "get" is not GET
    ['', 'methodOther'],
    [undefined, 'methodOther'],
  ];
  for (const [method, stat] of cases) t.equal(methodStat(method), stat, String(method));
});

t.test('statusStat: the class of a status from 100 to 599, nothing for anything else', async (t) => {
  const cases: [number, string | undefined][] = [
    [100, 'status1xx'],
    [101, 'status1xx'],
    [199, 'status1xx'],
    [200, 'status2xx'],
    [204, 'status2xx'],
    [304, 'status3xx'],
    [403, 'status4xx'],
    [407, 'status4xx'],
    [499, 'status4xx'],
    [500, 'status5xx'],
    [502, 'status5xx'],
    [504, 'status5xx'],
    [599, 'status5xx'],
    [600, undefined],
    [99, undefined],
    [0, undefined],
    [-200, undefined],
    [NaN, undefined],
  ];
  for (const [status, stat] of cases) t.equal(statusStat(status), stat, String(status));
});

t.test('every counter these name is one the shared Stats has', async (t) => {
  const names = new Set<string>(STAT_NAMES);
  const named = [
    ...['GET', 'POST', 'CONNECT', 'PATCH'].map(methodStat),
    ...[100, 200, 300, 400, 500].map((s) => statusStat(s)!),
    ...['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EWHATEVER'].map(upstreamErrorStat),
  ];
  t.same(named.filter((n) => !names.has(n)), [], 'no counter outside STAT_NAMES');
});
