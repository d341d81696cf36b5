// What the proxy passes on of a message's headers (src/worker/headers.ts), on raw header lists as Node
// gives them ([name, value, name, value, …]): hop-by-hop headers and those the Connection header names
// are dropped, in any spelling; everything else keeps its name's case and its order; Via gets our entry.
import t from 'tap';
import { forwardedHeaders, rawHeaderValue } from '../src/worker/headers.ts';

const via = { viaToken: 'proxyd-test' };

/** [name, value] pairs, for readable expectations. */
function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

t.test('hop-by-hop headers are dropped whatever their case; end-to-end ones pass', async (t) => {
  const raw = [
    'Connection', 'keep-alive',
    'KEEP-ALIVE', 'timeout=5',
    'Proxy-Connection', 'keep-alive',
    'proxy-authorization', 'Basic c2VjcmV0OnNlY3JldA==',
    'Proxy-Authenticate', 'Basic realm="x"',
    'te', 'trailers',
    'Trailer', 'X-Checksum',
    'Transfer-Encoding', 'chunked',
    'Upgrade', 'h2c',
    'Expect', '100-continue',
    'Content-Type', 'text/plain',
    'X-End-To-End', 'yes',
  ];
  t.same(pairs(forwardedHeaders(raw, via)), [
    ['Content-Type', 'text/plain'],
    ['X-End-To-End', 'yes'],
    ['Via', '1.1 proxyd-test'],
  ]);
});

t.test('names keep their case and order, repeated headers stay repeated, empty values pass', async (t) => {
  const raw = ['x-lower', 'a', 'X-MiXeD', 'b', 'Set-Cookie', 'one=1', 'X-Empty', '', 'Set-Cookie', 'two=2'];
  t.same(pairs(forwardedHeaders(raw, via)), [
    ['x-lower', 'a'],
    ['X-MiXeD', 'b'],
    ['Set-Cookie', 'one=1'],
    ['X-Empty', ''],
    ['Set-Cookie', 'two=2'],
    ['Via', '1.1 proxyd-test'],
  ]);
  t.same(raw, ['x-lower', 'a', 'X-MiXeD', 'b', 'Set-Cookie', 'one=1', 'X-Empty', '', 'Set-Cookie', 'two=2'], 'the input list is left as it was');
});

t.test('headers named in Connection are dropped: any case, spaces around the names, several Connection headers', async (t) => {
  const raw = ['Connection', ' X-Foo ,x-BAR,  ', 'X-Foo', '1', 'X-Bar', '2', 'connection', 'X-BAZ', 'x-baz', '3', 'X-Qux', '4'];
  t.same(pairs(forwardedHeaders(raw, via)), [
    ['X-Qux', '4'],
    ['Via', '1.1 proxyd-test'],
  ]);
});

t.test('an empty Connection header, or one of commas only, names nothing', async (t) => {
  for (const value of ['', ',', ' , ,']) {
    t.same(pairs(forwardedHeaders(['Connection', value, 'X-A', '1'], via)), [['X-A', '1'], ['Via', '1.1 proxyd-test']], JSON.stringify(value));
  }
});

t.test('a Connection header that names end-to-end headers drops them too (Host is set from the URL when asked)', async (t) => {
  const raw = ['Host', 'evil.example', 'Connection', 'Host, Content-Type, X-A', 'Content-Type', 'text/plain', 'X-A', '1', 'X-B', '2'];
  t.same(pairs(forwardedHeaders(raw, { ...via, host: 'origin.example:8080' })), [
    ['Host', 'origin.example:8080'],
    ['X-B', '2'],
    ['Via', '1.1 proxyd-test'],
  ]);
});

t.test('Host: replaced by the given one (first in the list, in any spelling of the old one), or left alone', async (t) => {
  const raw = ['X-First', '1', 'HOST', 'client-said.example', 'X-Last', '2'];
  t.same(pairs(forwardedHeaders(raw, { ...via, host: '[::1]:8080' })), [
    ['Host', '[::1]:8080'],
    ['X-First', '1'],
    ['X-Last', '2'],
    ['Via', '1.1 proxyd-test'],
  ]);
  t.same(pairs(forwardedHeaders(raw, via)), [
    ['X-First', '1'],
    ['HOST', 'client-said.example'],
    ['X-Last', '2'],
    ['Via', '1.1 proxyd-test'],
  ], 'without host: the Host header passes as it came');
});

t.test('Via: our entry is appended to the one there, in its spelling; added when there is none', async (t) => {
  t.same(pairs(forwardedHeaders(['via', '1.0 other-proxy'], via)), [['via', '1.0 other-proxy, 1.1 proxyd-test']]);
  t.same(pairs(forwardedHeaders([], via)), [['Via', '1.1 proxyd-test']], 'an empty list gets just our Via');
  // Several Via lines are one list, in the order of the proxies (RFC 9110 §7.6.3): ours must come last.
  const twoLines = forwardedHeaders(['Via', '1.0 first', 'X-A', '1', 'Via', '1.1 second'], via);
  t.equal(rawHeaderValue(twoLines, 'via'), '1.0 first, 1.1 second, 1.1 proxyd-test', 'with two Via lines, our entry ends the list');
  t.same(pairs(twoLines), [['Via', '1.0 first'], ['X-A', '1'], ['Via', '1.1 second, 1.1 proxyd-test']], 'joined to the last line');
});

t.test('keep: hop-by-hop headers an Upgrade needs pass when asked for, even when Connection names them', async (t) => {
  const raw = ['Connection', 'Upgrade, X-Hop', 'Upgrade', 'websocket', 'X-Hop', '1', 'Keep-Alive', 'timeout=5', 'Sec-WebSocket-Key', 'k'];
  t.same(pairs(forwardedHeaders(raw, { ...via, keep: new Set(['upgrade', 'connection']) })), [
    ['Connection', 'Upgrade, X-Hop'],
    ['Upgrade', 'websocket'],
    ['Sec-WebSocket-Key', 'k'],
    ['Via', '1.1 proxyd-test'],
  ]);
});

t.test('rawHeaderValue: every value of a header, in any case, joined by ", " as Node joins them', async (t) => {
  const raw = ['Via', '1.0 a', 'X-Other', 'x', 'VIA', '1.1 b', 'content-LENGTH', '5', 'X-Empty', '', 'X-Ab', 'long'];
  t.equal(rawHeaderValue(raw, 'via'), '1.0 a, 1.1 b', 'two lines, two spellings');
  t.equal(rawHeaderValue(raw, 'content-length'), '5');
  t.equal(rawHeaderValue(raw, 'x-empty'), '', 'an empty value is a value');
  t.equal(rawHeaderValue(raw, 'x-a'), undefined, 'a name that is only a prefix of a header is not that header');
  t.equal(rawHeaderValue(raw, 'host'), undefined, 'absent: undefined');
  t.equal(rawHeaderValue([], 'via'), undefined);
  t.equal(rawHeaderValue(['X', '', 'x', 'b'], 'x'), ', b', 'an empty first value still takes its place');
});
