// worker/lazy-dispatcher.ts: the upstream pool (undici's Agent) is made by the first request that needs
// it, once, and serves that request and the next; nothing is made before (issue 20: a fresh serving
// thread holds no undici). A real Agent, a real origin on loopback.
import t from 'tap';
import http from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { LazyDispatcher } from '../src/worker/lazy-dispatcher.ts';

/** One GET through `d`'s dispatch, as forward-http.ts dispatches: status and body. */
function get(d: { dispatch: Dispatcher['dispatch'] }, origin: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let body = '';
    d.dispatch({ origin, path: '/x', method: 'GET', headers: {} }, {
      onRequestStart() {},
      onResponseStart(_controller, statusCode) {
        status = statusCode;
      },
      onResponseData(_controller, chunk) {
        body += chunk.toString();
      },
      onResponseEnd() {
        resolve({ status, body });
      },
      onResponseError(_controller, err) {
        reject(err);
      },
    });
  });
}

t.test('made on the first dispatch, once, and it serves that request and the next', async (t) => {
  const server = http.createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const made: Agent[] = [];
  const lazy = new LazyDispatcher(() => {
    const agent = new Agent();
    made.push(agent);
    return agent;
  });
  t.teardown(async () => {
    for (const a of made) await a.close();
    server.close();
  });
  t.equal(made.length, 0, 'nothing made before the first request');
  t.same(await get(lazy, origin), { status: 200, body: 'hello /x' }, 'the first request is answered');
  t.same(await get(lazy, origin), { status: 200, body: 'hello /x' }, 'and the second');
  t.equal(made.length, 1, 'one Agent made');
  t.equal(lazy.real, made[0], '.real is that Agent');
});

t.test('.real makes it when asked first (the cache layer composes on the real Agent)', async (t) => {
  let calls = 0;
  const lazy = new LazyDispatcher(() => {
    calls++;
    return new Agent();
  });
  const agent = lazy.real;
  t.equal(lazy.real, agent, 'the same one each time');
  t.equal(calls, 1);
  await agent.close();
});
