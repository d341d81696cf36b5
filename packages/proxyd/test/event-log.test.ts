// The producer's record text (memory/event-log.ts): an event's record is exactly the JSON of
// { time, level: 'info', thread, ...event }, whichever way it was made (the prefix fast path for events
// without their own level, time or thread; the merged object otherwise). The logger's file line is
// that text with its time rewritten, so this is what keeps the log file's lines as they were.
import t from 'tap';
import { threadId } from 'node:worker_threads';
import { LogRing } from '@proxyd/sync/log-ring';
import { EventLog, type LogEvent } from '../src/memory/event-log.ts';

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
