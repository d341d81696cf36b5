// connect-head.ts: a whole CONNECT head in a connection's first chunk is parsed by Node's own parser
// into a real IncomingMessage; everything else is declined, so that http.Server parses and answers it.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { parseConnectHead } from '../src/worker/connect-head.ts';

const parse = (text: string, max = 16 * 1024) => parseConnectHead(new net.Socket(), Buffer.from(text, 'latin1'), max);

t.test('a whole CONNECT head: an IncomingMessage as the server would give, and the bytes after it', async (t) => {
  const got = parse('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic eDp5\r\nVia: 1.1 a\r\n\r\n\x16\x03\x01hello');
  t.ok(got, 'taken');
  t.ok(got!.req instanceof http.IncomingMessage, 'a real IncomingMessage');
  t.equal(got!.req.method, 'CONNECT');
  t.equal(got!.req.url, 'example.com:443');
  t.equal(got!.req.httpVersion, '1.1');
  t.same(got!.req.rawHeaders, ['Host', 'example.com:443', 'Proxy-Authorization', 'Basic eDp5', 'Via', '1.1 a']);
  t.equal(got!.req.headers['proxy-authorization'], 'Basic eDp5');
  t.equal(got!.head.toString('latin1'), '\x16\x03\x01hello', 'pipelined bytes kept for the tunnel');
  t.equal(parse('CONNECT a:443 HTTP/1.0\r\n\r\n')!.head.length, 0, 'no bytes after the head');
});

t.test('many headers (delivered by llhttp in several batches) all arrive', async (t) => {
  const lines = Array.from({ length: 80 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
  const got = parse(`CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n${lines}\r\n`);
  t.equal(got!.req.rawHeaders.length, 2 * 81);
  t.equal(got!.req.headers['x-h79'], 'v79');
});

t.test('everything else is left to http.Server', async (t) => {
  const declined: Record<string, string> = {
    'another method': 'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n',
    'a lower-case method': 'connect a:443 HTTP/1.1\r\nHost: a\r\n\r\n',
    'a head not complete in the first chunk': 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n',
    'a bare LF inside a header line': 'CONNECT a:443 HTTP/1.1\r\nHost: a\nX: y\r\n\r\n',
    'a space before the colon': 'CONNECT a:443 HTTP/1.1\r\nHost : a\r\n\r\n',
    'a NUL in a header value': 'CONNECT a:443 HTTP/1.1\r\nHost: a\0b\r\n\r\n',
    'an obs-fold line': 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n b\r\n\r\n',
    'a version the parser refuses': 'CONNECT a:443 HTTP/9.9\r\nHost: a\r\n\r\n',
    'too short to say': 'CONN',
  };
  for (const [what, text] of Object.entries(declined)) t.equal(parse(text), undefined, what);
  t.equal(parse(`CONNECT a:443 HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(2000)}\r\n\r\n`, 1024), undefined, 'a head over --max-header-bytes (the server answers 431)');
  t.ok(parse(`CONNECT a:443 HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(500)}\r\n\r\n`, 1024), 'a head under it is taken');
});

t.test('the parser pool is not left in a bad state: a thousand heads, taken and declined, in turn', async (t) => {
  let taken = 0;
  for (let i = 0; i < 1000; i++) {
    if (parse(i % 2 ? 'CONNECT a:443 HTTP/1.1\r\nHost : a\r\n\r\n' : `CONNECT h${i}:443 HTTP/1.1\r\nHost: h${i}:443\r\n\r\n`)?.req.url === `h${i}:443`) taken++;
  }
  t.equal(taken, 500);
});
