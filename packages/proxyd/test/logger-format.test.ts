// The logger's per-record shortcuts give exactly what the plain forms give: isoTime what
// Date#toISOString writes, addressOf what replace(/:\d+$/, '') leaves, hostOf the same host when the
// same target comes again or another one comes between (the last answer is kept).
import t from 'tap';
import { addressOf, hostOf, isoTime } from '../src/logger/format.ts';
import { statusClass } from '../src/logger/request-facts.ts';

t.test('isoTime is toISOString, within a second, across seconds and outside the years it shortcuts', async (t) => {
  let checked = 0;
  const wrong: number[] = [];
  for (const start of [Date.now(), 0, 999, 1796130284000, 253402300800000 - 1500, -5000]) {
    for (let i = 0; i < 3000; i += 1 + (i % 7)) {
      const ms = start + i;
      checked++;
      if (isoTime(ms) !== new Date(ms).toISOString()) wrong.push(ms);
    }
  }
  for (const ms of [1.5, 1000.5, 1001, 1001.25, -1, -999, 5e15, 1001]) {
    checked++;
    if (isoTime(ms) !== new Date(ms).toISOString()) wrong.push(ms);
  }
  t.same(wrong, [], `${checked} times`);
});

t.test('addressOf takes off a port as replace(/:\\d+$/, "") does', async (t) => {
  for (const client of ['127.0.0.2:40312', '[::1]:5000', '[::1]', '::1', '10.0.0.1', '10.0.0.1:', 'host:12a', 'a:1:2', ':', '', '127.0.0.2:40312', '127.0.0.3:1']) {
    t.equal(addressOf(client), client.replace(/:\d+$/, ''), JSON.stringify(client));
  }
});

t.test('hostOf keeps its last answer only for the same target', async (t) => {
  const a = { url: 'http://A.test:8080/x' };
  const b = { target: 'b.test:443' };
  t.equal(hostOf(a), 'a.test');
  t.equal(hostOf(a), 'a.test');
  t.equal(hostOf(b), 'b.test');
  t.equal(hostOf(a), 'a.test');
  t.equal(hostOf({}), undefined);
  t.equal(hostOf({ url: 'http://:80/' }), undefined);
  t.equal(hostOf({ url: '/favicon.ico' }), undefined, 'origin-form (a browser pointed at the proxy itself) names no destination');
  t.equal(hostOf({ url: '*' }), undefined);
});

t.test('statusClass', async (t) => {
  t.same([100, 199, 200, 302, 404, 503, 599, 600, 0, 99, 250.5].map(statusClass), ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx', '5xx', 'none', 'none', 'none', '2xx']);
});
