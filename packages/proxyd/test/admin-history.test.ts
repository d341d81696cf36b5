// The admin server keeps the last minute of chart points (one a second, bounded) and sends it as part of
// the first message of /api/events, so that a dashboard opened now draws a history at once.
import t from 'tap';
import { History } from '../src/admin/history.ts';
import { startOrigin } from './helpers/origin.ts';
import { startTestProxy } from './helpers/proxy.ts';
import { curl } from './helpers/curl.ts';
import { startAdminServer } from '../src/admin/admin-server.ts';

t.test('History keeps the last N items, oldest first', async (t) => {
  const h = new History<number>(60);
  t.same(h.toArray(), [], 'empty');
  for (let i = 1; i <= 3; i++) h.push(i);
  t.same(h.toArray(), [1, 2, 3], 'fewer than its capacity: all, oldest first');
  for (let i = 4; i <= 150; i++) h.push(i);
  t.equal(h.size, 60, 'bounded by its capacity');
  t.same(h.toArray(), Array.from({ length: 60 }, (_, i) => 91 + i), 'the last 60, oldest first');
  t.throws(() => new History(0), RangeError);
});

interface Point {
  time: number;
  stats: Record<string, number>;
  semaphore: Record<string, number>;
}

t.test('the first message of /api/events carries the last seconds; later ones do not', async (t) => {
  const origin = await startOrigin();
  const proxy = await startTestProxy(t, { workers: 1, admin: { host: '127.0.0.1', port: 0 } });
  const admin = (await startAdminServer(proxy))!;
  t.teardown(async () => {
    await admin.close();
    await proxy.close(500);
    await origin.close();
  });
  for (let i = 0; i < 3; i++) t.equal((await curl(['--proxy', proxy.url, origin.url('/hello')])).status, 200);
  await new Promise((r) => setTimeout(r, 3500));

  const events = await curl(['--max-time', '3', `http://127.0.0.1:${admin.address.port}/api/events`], 4000);
  const messages = [...events.body.toString().matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as { time: number; stats: { requests: number }; history?: Point[] });
  t.ok(messages.length >= 2, `${messages.length} messages in 3 s`);
  const [first, ...later] = messages;
  t.equal(first!.stats.requests, 3, 'the first message is a snapshot');
  const history = first!.history ?? [];
  t.ok(history.length >= 3, `with ${history.length} points of history after ~3.5 s`);
  t.ok(history.length <= 60, 'at most a minute of them');
  for (let i = 1; i < history.length; i++) {
    const apart = history[i]!.time - history[i - 1]!.time;
    t.ok(apart >= 500 && apart <= 2500, `points ${i - 1} and ${i}: ${apart} ms apart (one a second)`);
  }
  t.equal(history.at(-1)!.stats.requests, 3, 'the last point counts the three requests');
  t.ok(history.at(-1)!.time <= first!.time, 'and is not newer than the snapshot');
  t.same(Object.keys(history[0]!).sort(), ['semaphore', 'stats', 'time'], 'a point holds what the charts need');
  t.same(Object.keys(history[0]!.stats).sort(), ['allowed', 'blocked', 'bytesDown', 'bytesUp', 'limiterCasRetries', 'rateLimited', 'requests']);
  t.same(Object.keys(history[0]!.semaphore).sort(), ['held', 'permits', 'waiting']);
  t.ok(later.every((m) => m.history === undefined), 'the later messages carry no history');
});
