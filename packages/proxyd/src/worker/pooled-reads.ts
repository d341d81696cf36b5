// Reading a tunnel's upstream socket into recycled buffers instead of a new one per read.
//
// By default Node gives every read of a socket a freshly allocated 64 KiB buffer. A tunnel moving a
// gigabyte a second makes 15,000 of them a second, and V8 counts their memory as "external": it answered
// with a full mark-compact every 20–30 ms, and its helper threads took a quarter of a core besides the
// serving thread's own pauses (measured with --trace-gc and per-thread CPU, issue 7). Node can read into
// buffers we keep instead: `net.connect({ onread: { buffer, callback } })` reads into the buffer we hand
// it and calls us with the byte count; we write those bytes to the other socket.
//
// The catch is that a buffer must not be read into again while a write of its bytes is still pending
// (the kernel may take only part of a write at once, and a write behind others waits in Node's queue;
// either way what waits points into the buffer, not at a copy). So:
//
//   - A socket that is busy reads into a chunk of its own, taken from this thread's spare list; the
//     chunk goes back to the list when its write has finished (the write's callback).
//   - A socket that is quiet waits with the thread's one shared `landing` buffer, so that an idle tunnel
//     holds no buffer at all (an idle tunnel's memory is one of the targets). Bytes that land there are
//     copied out before they are written: into Node's small-buffer pool for a few bytes, into a spare
//     chunk for more. The copy is paid once per burst, not per read.
//   - "Busy" means the last read filled at least half a chunk: more is likely waiting in the kernel.
//
// Only sockets the proxy dials itself can be set up this way (the option is given at creation); the
// client's socket, handed over from the primary, keeps Node's default reads.
import net from 'node:net';

const CHUNK = 64 * 1024;
/** Spare chunks kept for reuse, per thread (1 MiB); more than that in flight are left to the GC. */
const KEEP = 16;
const spare: Buffer[] = [];
/** Where every quiet socket's next read lands; its bytes are copied out at once (see above). */
const landing = Buffer.allocUnsafeSlow(CHUNK);
/** Below this a copy comes from Node's shared small-buffer pool: no allocation of its own. */
const SMALL = 4096;

function takeChunk(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

/** The write of a chunk's bytes finished: the chunk may be read into again. */
function chunkWritten(chunk: Buffer, err?: Error | null): void {
  if (!err && spare.length < KEEP) spare.push(chunk); // after an error, leave it to the GC
}

const pooled = new WeakSet<net.Socket>();

/** Whether this socket forwards its own reads (relay.ts must not add a 'data' listener). */
export function forwardsItsReads(socket: net.Socket): boolean {
  return pooled.has(socket);
}

/**
 * Dial like net.connect, with every byte read from the new socket written to `to`. When `to` is over
 * its high-water mark, reading pauses; the caller resumes it on `to`'s 'drain' (relay.ts does).
 */
export function connectForwardingTo(to: net.Socket, options: net.TcpNetConnectOpts): net.Socket {
  let busy = false;
  const socket = net.connect({
    ...options,
    onread: {
      buffer: () => (busy ? takeChunk() : landing),
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        busy = bytes >= CHUNK / 2;
        const read = buffer as Buffer;
        let sent: boolean;
        if (read !== landing) {
          sent = to.write(read.subarray(0, bytes), (err) => chunkWritten(read, err));
        } else if (bytes < SMALL) {
          sent = to.write(Buffer.from(landing.subarray(0, bytes)));
        } else {
          const chunk = takeChunk();
          landing.copy(chunk, 0, 0, bytes);
          sent = to.write(chunk.subarray(0, bytes), (err) => chunkWritten(chunk, err));
        }
        if (sent) return true;
        socket.pause(); // stops reading (readStop) until `to` drains
        return false;
      },
    },
  });
  pooled.add(socket);
  return socket;
}
