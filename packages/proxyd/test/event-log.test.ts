// The producer's record text (memory/event-log.ts): an event's record is exactly the JSON of
// { time, level: 'info', thread, ...event }, whichever way it was made (the prefix fast path for events
// without their own level, time or thread; the merged object otherwise). The logger's file line is
// that text with its time rewritten, so this is what keeps the log file's lines as they were.
import t from 'tap';
import { threadId } from 'node:worker_threads';
import { LogRing } from '@proxyd/sync/log-ring';
import { decodeRequest, EventLog, type LogEvent, type RequestRecord } from '../src/memory/event-log.ts';

t.test('each record is the JSON of { time, level, thread, ...event }, fields in the same order', async (t) => {
  const ring = LogRing.create(64 * 1024);
  const log = new EventLog(ring, () => 3); // debug: nothing filtered
  const events: LogEvent[] = [
    { event: 'request', conn: 1, client: '127.0.0.2:40000', method: 'GET', url: 'http://a.test/"quoted"\\é', parent: undefined, status: 200, cut: undefined, up: 0, down: 1024, ms: 1.5, cache: undefined },
    { event: 'tunnel', client: '[::1]:5000', target: 'a.test:443', up: 10, down: 20, ms: 3 },
    { event: 'blocked', level: 'warn', client: '127.0.0.1:1', rule: 'x', ok: false, none: null },
    { event: 'odd', level: undefined, a: 1 }, // level present but undefined: the merged object drops it
    { event: 'odd', time: 5 },
    { event: 'odd', thread: 'mine' },
    { event: 'numbers', nan: Number.NaN, inf: Infinity, neg: -0.5 },
    { event: 'only' },
  ];
  const before = Date.now();
  for (const e of events) t.ok(log.write(e));
  const after = Date.now();
  const got: string[] = [];
  ring.drainText((text) => got.push(text));
  t.equal(got.length, events.length);
  for (const [i, e] of events.entries()) {
    const time = (JSON.parse(got[i]!) as { time: number }).time;
    if (!('time' in e)) t.ok(time >= before && time <= after, 'stamped with the time of writing');
    t.equal(got[i], JSON.stringify({ time, level: 'info', thread: threadId, ...e }), `record ${i} (${e.event})`);
  }
});

t.test('events below the shared level are not written', async (t) => {
  const ring = LogRing.create(4096);
  const log = new EventLog(ring, () => 2); // info
  t.ok(log.write({ event: 'noise', level: 'debug' }));
  t.equal(ring.written, 0);
  t.ok(log.write({ event: 'request' }));
  t.equal(ring.written, 1);
});

t.test('a request record, positional or JSON, gives the logger the JSON line write() would have made', async (t) => {
  const ring = LogRing.create(64 * 1024);
  const log = new EventLog(ring, () => 2);
  const requests: RequestRecord[] = [
    { conn: 1, client: '127.0.0.2:40000', method: 'GET', url: 'http://a.test/x?y=1', parent: undefined, status: 200, cut: undefined, up: 0, down: 1024, ms: 1.5, cache: undefined },
    { conn: 22, client: '[::1]:5000', method: 'POST', url: 'http://b.test/é', parent: 'p1', status: 0, cut: true, up: 7, down: 0, ms: 0.1, cache: 'BYPASS' },
    { conn: 3, client: '127.0.0.3:1', method: 'GET', url: 'http://a.test/', status: 304, up: 0, down: 0, ms: 12, cache: 'HIT' },
    // Not plain: these take write()'s JSON form.
    { conn: 4, client: '127.0.0.2:1', method: 'GET', url: 'http://a.test/"quoted"\\', status: 200, up: 0, down: 1, ms: 1 },
    { conn: 5, client: '127.0.0.2:1', method: 'GET', url: 'http://a.test/\x1f\x1e', status: 200, up: 0, down: 1, ms: 1 },
    { conn: 6, client: '127.0.0.2:1', method: 'GET', url: 'http://a.test/\ud800', status: 200, up: 0, down: 1, ms: 1 },
    { conn: 7, client: '127.0.0.2:1', method: 'GET', url: 'http://a.test/', status: 200, up: 0, down: 1, ms: Number.NaN },
    { conn: 8, client: '127.0.0.2:1', method: undefined, url: undefined, parent: '', status: 200, up: 0, down: 1, ms: 1, cache: '' },
  ];
  for (const r of requests) t.ok(log.writeRequest(r));
  const got: string[] = [];
  ring.drainText((text) => got.push(text));
  t.equal(got.length, requests.length);
  for (const [i, r] of requests.entries()) {
    const decoded = decodeRequest(got[i]!);
    t.equal(decoded === undefined, i >= 3, `record ${i} ${i >= 3 ? 'as JSON' : 'positional'}`);
    const json = decoded?.json ?? got[i]!;
    const time = (JSON.parse(json) as { time: number }).time;
    const expected = JSON.stringify({ time, level: 'info', thread: threadId, event: 'request', conn: r.conn, client: r.client, method: r.method, url: r.url, parent: r.parent, status: r.status, cut: r.cut, up: r.up, down: r.down, ms: r.ms, cache: r.cache });
    t.equal(json, expected, `record ${i}: the same JSON text`);
    if (decoded) t.equal(JSON.stringify(decoded.record), expected, `record ${i}: the same fields and values as the parsed JSON`);
  }
  t.equal(decodeRequest('{"time":1}'), undefined, 'a JSON record is not positional');
  t.equal(decodeRequest('\x1e1\x1f2'), undefined, 'nor is a short one');
});

t.test('request records below the shared level are not written', async (t) => {
  const ring = LogRing.create(4096);
  const log = new EventLog(ring, () => 1); // warn
  t.ok(log.writeRequest({ conn: 1, client: 'c', method: 'GET', url: 'http://a/', status: 200, up: 0, down: 0, ms: 0 }));
  t.equal(ring.written, 0);
});
