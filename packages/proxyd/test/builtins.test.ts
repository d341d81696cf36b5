// src/builtins/: node:http required rather than imported, node:tls loaded when first used (issue 20).
// Each case runs in a fresh worker thread, as proxyd's threads are, and reads that thread's
// process.moduleLoadList: the Node.js modules it has loaded so far.
import t from 'tap';
import { Worker } from 'node:worker_threads';

const HTTP = new URL('../src/builtins/http.ts', import.meta.url).href;
const TLS = new URL('../src/builtins/tls.ts', import.meta.url).href;

/** Runs `body` as an ES module in a new worker thread; resolves with what it posts, within 20 s. */
function inThread(body: string): Promise<unknown> {
  const code = `import { parentPort } from 'node:worker_threads';\n${body}`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, type: 'module' } as never);
    const timer = setTimeout(() => (w.terminate(), reject(new Error('the thread did not answer in 20 s'))), 20_000);
    w.once('message', (m) => (clearTimeout(timer), resolve(m), w.terminate()));
    w.once('error', (e) => (clearTimeout(timer), reject(e)));
  });
}

/** The loaded Node.js modules that matter here: its bundled undici, and TLS. */
const HEAVY = `process.moduleLoadList.filter((m) => m.includes('undici') || m === 'NativeModule tls')`;

t.test('why: an ES-module import of node:http loads the undici bundled in Node.js (and TLS with it)', async (t) => {
  const loaded = (await inThread(`await import('node:http');\nparentPort.postMessage(${HEAVY});`)) as string[];
  // If a Node.js release stops doing this, builtins/http.ts is no longer needed: this fails to say so.
  t.ok(loaded.some((m) => m.includes('undici')), `loaded: ${loaded.join(', ')}`);
});

t.test('builtins/http.ts loads neither, and is the real node:http: a server answers a request', async (t) => {
  const answer = (await inThread(`
const { default: http, STATUS_CODES } = await import(${JSON.stringify(HTTP)});
const before = ${HEAVY};
const server = http.createServer((req, res) => res.end('hello ' + req.url));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const body = await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port: server.address().port, path: '/x', agent: false }, (res) => {
    let b = '';
    res.on('data', (c) => (b += c)).on('end', () => resolve(res.statusCode + ' ' + b));
  }).on('error', reject);
});
server.close();
parentPort.postMessage({ before, body, status404: STATUS_CODES[404], same: http === (await import('node:module')).createRequire(import.meta.url)('node:http') });
`)) as { before: string[]; body: string; status404: string; same: boolean };
  t.same(answer.before, [], 'nothing of undici or TLS loaded by importing it');
  t.equal(answer.body, '200 hello /x', 'a real server and client on loopback');
  t.equal(answer.status404, 'Not Found', 'STATUS_CODES is node:http’s');
  t.ok(answer.same, 'the same module object node:http is');
});

t.test('builtins/tls.ts loads node:tls at the first nodeTls(), once', async (t) => {
  const answer = (await inThread(`
const { nodeTls } = await import(${JSON.stringify(TLS)});
const before = ${HEAVY};
const tls = nodeTls();
const after = ${HEAVY};
parentPort.postMessage({ before, after, once: nodeTls() === tls, real: typeof tls.createSecureContext === 'function' && typeof tls.TLSSocket === 'function' });
`)) as { before: string[]; after: string[]; once: boolean; real: boolean };
  t.same(answer.before, [], 'not loaded by importing builtins/tls.ts');
  t.ok(answer.after.includes('NativeModule tls'), 'loaded by the first call');
  t.ok(answer.once, 'the same module on the next call');
  t.ok(answer.real, 'node:tls itself');
});
