// The worker's pooled reads (src/worker/pooled-reads.ts), with real sockets on 127.0.0.1: bytes read
// into the shared landing buffer must be copied out before their write is queued — a write that waits
// behind a full socket must still carry its own bytes after other sockets have read into that buffer.
import t from 'tap';
import net from 'node:net';
import { connectForwardingTo } from '../src/worker/pooled-reads.ts';
import { eventually } from './helpers/proxy.ts';

/** A server that sends `payload` to whoever connects, then closes. */
async function sender(payload: Buffer): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => s.end(payload));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** A connected pair: `near` is ours to write to, `far` the peer we read (or not) from. */
async function socketPair(): Promise<{ near: net.Socket; far: Promise<net.Socket>; close(): void }> {
  let resolveFar!: (s: net.Socket) => void;
  const far = new Promise<net.Socket>((r) => (resolveFar = r));
  const server = net.createServer((s) => {
    s.pause(); // reads nothing until the test says so
    resolveFar(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const near = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => near.once('connect', r));
  return { near, far, close: () => server.close() };
}

async function readAll(socket: net.Socket, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  socket.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${got} of ${bytes} bytes in 5 s`)), 5_000);
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= bytes) (clearTimeout(timer), resolve(Buffer.concat(parts)));
    });
  });
}

for (const size of [100, 20_000]) {
  t.test(`a queued write of ${size} bytes from the landing buffer keeps its bytes while other sockets read`, async (t) => {
    // 1. A destination that reads nothing, filled until Node queues what we write to it.
    const blocked = await socketPair();
    t.teardown(() => blocked.close());
    const filler = Buffer.alloc(64 * 1024, 0x2e);
    let filled = 0;
    for (let i = 0; i < 2000 && blocked.near.writableLength === 0; i++) {
      blocked.near.write(filler);
      filled += filler.length;
      await new Promise((r) => setImmediate(r));
    }
    t.ok(blocked.near.writableLength > 0, `the blocked socket has bytes waiting after ${filled >> 10} KiB`);
    // 2. A quiet socket reads `size` bytes of "A" into the landing buffer; its write must wait.
    const a = await sender(Buffer.alloc(size, 0x41));
    t.teardown(() => a.close());
    const queued = blocked.near.writableLength;
    const fromA = connectForwardingTo(blocked.near, { port: a.port, host: '127.0.0.1' });
    t.teardown(() => fromA.destroy()); // it stopped reading when its write had to wait: no 'end' comes
    await eventually(() => blocked.near.writableLength >= queued + size, 'the bytes from A wait in the queue', 5000);
    // 3. Other quiet sockets read "B" into the same landing buffer, and are forwarded at once.
    const open = await socketPair();
    t.teardown(() => open.close());
    const receivedB = readAll(await open.far, 3 * size);
    const b = await sender(Buffer.alloc(size, 0x42));
    t.teardown(() => b.close());
    for (let i = 0; i < 3; i++) {
      const fromB = connectForwardingTo(open.near, { port: b.port, host: '127.0.0.1' });
      await new Promise((r) => fromB.once('close', r));
    }
    t.equal((await receivedB).toString('latin1'), 'B'.repeat(3 * size), 'B arrives where it was sent');
    // 4. Now the blocked destination reads: after the filler comes A's bytes, unchanged.
    const got = await readAll(await blocked.far, filled + size);
    t.equal(got.subarray(filled).toString('latin1'), 'A'.repeat(size), "A's bytes are still A's");
    blocked.near.destroy();
    open.near.destroy();
  });
}
