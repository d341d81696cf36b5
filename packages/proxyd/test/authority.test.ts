// The target of a CONNECT request, "host:port" (src/worker/authority.ts): a name or an IPv4 address,
// or an IPv6 literal in brackets, and a port from 1 to 65535 — required. Anything else is refused
// (400) before any lookup.
import t from 'tap';
import { parseAuthority } from '../src/worker/authority.ts';

t.test('names and IPv4 addresses with a port', async (t) => {
  t.same(parseAuthority('example.com:443'), { host: 'example.com', port: 443 });
  t.same(parseAuthority('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  t.same(parseAuthority('localhost:1'), { host: 'localhost', port: 1 }, 'the lowest port');
  t.same(parseAuthority('a.b-c.example:65535'), { host: 'a.b-c.example', port: 65535 }, 'the highest port');
  t.same(parseAuthority('Example.COM:443'), { host: 'Example.COM', port: 443 }, 'the case of a name is kept (the blocklist ignores case)');
  t.same(parseAuthority('2852039166:443'), { host: '2852039166', port: 443 }, 'a decimal address is a name here: the policy checks what it resolves to');
  t.same(parseAuthority('example.com:00443'), { host: 'example.com', port: 443 }, 'leading zeros in the port (five digits at most)');
});

t.test('IPv6 literals: in brackets, returned without them', async (t) => {
  t.same(parseAuthority('[::1]:443'), { host: '::1', port: 443 });
  t.same(parseAuthority('[2001:DB8::1]:8443'), { host: '2001:DB8::1', port: 8443 }, 'upper-case hex');
  t.same(parseAuthority('[::ffff:169.254.169.254]:443'), { host: '::ffff:169.254.169.254', port: 443 }, 'IPv4-mapped: the destination policy sees the mapped address');
  t.equal(parseAuthority('::1:443'), undefined, 'without brackets: refused (where would the port start?)');
  t.equal(parseAuthority('[::1]'), undefined, 'without a port');
  t.equal(parseAuthority('[fe80::1%eth0]:443'), undefined, 'a zone index is refused');
  t.equal(parseAuthority('[]:443'), undefined, 'empty brackets');
  t.equal(parseAuthority('[::1:443'), undefined, 'an unclosed bracket');
  t.equal(parseAuthority('[example.com]:443'), undefined, 'a name in brackets');
});

t.test('a port is required, and must be 1 to 65535 in plain digits', async (t) => {
  for (const text of ['example.com', 'example.com:', 'example.com:0', 'example.com:65536', 'example.com:99999', 'example.com:123456', 'example.com:-1', 'example.com:+443', 'example.com: 443', 'example.com:443 ', 'example.com:0x1bb', 'example.com:4e2']) {
    t.equal(parseAuthority(text), undefined, JSON.stringify(text));
  }
});

t.test('anything that is not just host:port is refused', async (t) => {
  for (const text of ['', ':443', 'user@example.com:443', 'user:pass@example.com:443', 'example.com:443/path', 'http://example.com:443', 'example.com:443?q', 'example.com:443#f', 'exa mple.com:443', ' example.com:443', 'a:b:443', 'example.com:443:443']) {
    t.equal(parseAuthority(text), undefined, JSON.stringify(text));
  }
});
