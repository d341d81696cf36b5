// first-bytes.ts: every connection's first chunk is looked at before http.Server's parser takes the
// socket. Real sockets on loopback, a real http.Server: the silent ones are handed over after the wait
// (one interval sweeps them all), a CONNECT head goes to `direct`, a version-less line to `refuse`, and a
// connection that closes while waiting leaves nothing behind.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { handToParser, waitingForFirstBytes } from '../src/worker/first-bytes.ts';

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

t.test('silent, direct, refused and vanished connections each end where they should', async (t) => {
  const server = http.createServer((req, res) => res.end('ok'));
  const handed: string[] = [];
  server.on('connection', (s: net.Socket) => handed.push(String(s.remotePort)));
  const directed: string[] = [];
  const refused: string[] = [];
  const listener = net.createServer({ pauseOnConnect: true }, (socket) =>
    handToParser(
      server,
      socket,
      (s) => (refused.push(String(s.remotePort)), s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')),
      (s, first) => {
        if (!first.toString('latin1').startsWith('CONNECT ')) return false;
        directed.push(String(s.remotePort));
        s.end('HTTP/1.1 200 Connection Established\r\n\r\n');
        return true;
      },
    ),
  );
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const open = (): Promise<net.Socket> =>
    new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => r(s));
      s.on('error', () => {});
    });

  // Three silent clients, opened 300 ms apart: each is handed over unseen, none before its second.
  const silent: net.Socket[] = [];
  const openedAt: number[] = [];
  for (let i = 0; i < 3; i++) {
    silent.push(await open());
    openedAt.push(Date.now());
    await new Promise((r) => setTimeout(r, 300));
  }
  // Meanwhile: a CONNECT head, a version-less line, and one that closes without a byte.
  const connect = await open();
  connect.write('CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n');
  const bare = await open();
  bare.write('GET /\r\n');
  const gone = await open();
  gone.end();
  const connectPort = String(connect.localPort);
  const barePort = String(bare.localPort);
  const answers = await Promise.all(
    [connect, bare].map((s) => new Promise<string>((r) => {
      let text = '';
      s.on('data', (d) => (text += d.toString('latin1')));
      s.on('close', () => r(text));
    })),
  );
  t.match(answers[0], /^HTTP\/1\.1 200 /, 'the CONNECT head went to direct');
  t.match(answers[1], /^HTTP\/1\.1 400 /, 'the version-less line was refused');
  t.same(directed, [connectPort]);
  t.same(refused, [barePort]);

  t.ok(await until(() => handed.length === 3, 3000), 'every silent client handed over within 3 s');
  t.same([...handed].sort(), silent.map((s) => String(s.localPort)).sort(), 'exactly the silent ones, nobody else');
  t.ok(await until(() => waitingForFirstBytes() === 0, 2000), 'nothing left waiting (the closed one too)');

  // Handed over means served: the parser reads what a silent client sends at last.
  const reply = new Promise<string>((r) => {
    let text = '';
    silent[0]!.on('data', (d) => (text += d.toString('latin1')));
    silent[0]!.on('close', () => r(text));
  });
  silent[0]!.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(await reply, /^HTTP\/1\.1 200 /, 'a silent client served once it speaks');
  t.ok(Date.now() - openedAt[0]! >= 1000, 'not before its second of silence');

  for (const s of silent) s.destroy();
  listener.close();
  server.close();
});
