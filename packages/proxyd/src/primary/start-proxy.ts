/**
 * The primary thread: accept, admit, hand over. It owns the listening socket, the shared memory, the
 * pool of serving threads and the logger thread; it never parses HTTP itself.
 *
 *   accept (paused) → semaphore permit (FIFO; 503 when the queue is full or too slow) → transfer the
 *   socket to a worker → the worker serves it and releases the permit on close.
 */
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import { BroadcastChannel } from 'node:worker_threads';
import { formatDuration } from '../config/duration.ts';
import type { ProxyOptions } from '../config/options.ts';
import { formatPortList } from '../config/port-list.ts';
import { parseBlocklist, type Blocklist } from '../policy/blocklist.ts';
import { POLICY_CHANNEL, type PolicyUpdate } from '../shared/policy-channel.ts';
import { rawRefusal } from '../shared/refusals.ts';
import { createSharedState, type SharedState } from '../shared/shared-state.ts';
import { admit } from './admission.ts';
import { startLoggerThread } from './logger-thread.ts';
import { startServing } from './serving.ts';

export interface RunningProxy {
  /** Where it listens. */
  address: net.AddressInfo;
  shared: SharedState;
  /** Re-read the blocklist file; a bad file keeps the old list. */
  reload(): Promise<void>;
  /** Stop accepting, let open connections finish up to `graceMs`, close the rest, flush the log. */
  close(graceMs?: number): Promise<{ closedAtDeadline: number }>;
}

export async function loadBlocklist(file: string): Promise<Blocklist> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`blocklist ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    return parseBlocklist(text);
  } catch (err) {
    throw new Error(`blocklist ${file}: ${(err as Error).message}`);
  }
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const blocklist = options.blocklistFile ? await loadBlocklist(options.blocklistFile) : parseBlocklist('');
  const shared = createSharedState(options);
  const { stats, log, leases, semaphore } = shared;
  const logger = startLoggerThread(shared, options);
  const serving = await startServing(shared, options, blocklist.rules);
  const policy = new BroadcastChannel(POLICY_CHANNEL);
  policy.unref();

  let nextId = 0;
  const open = new Set<net.Socket>();

  function onConnection(socket: net.Socket): void {
    const id = ++nextId;
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    stats.add('accepted');
    log.write({ event: 'accepted', level: 'debug', conn: id, client });
    socket.on('error', () => {}); // a client that resets while queued must not crash the primary
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    void admit(shared, options, socket, id, client).then((result) => {
      if (result === 'admitted') handOver(socket, id, client);
    });
  }

  function handOver(socket: net.Socket, id: number, client: string): void {
    const lease = leases.take();
    if (lease < 0) {
      // Only if finished tasks stop reporting back: refuse rather than lose track of a permit.
      semaphore.release();
      log.write({ event: 'lease-table-full', level: 'error', conn: id, client });
      socket.resume();
      return void socket.end(rawRefusal('QUEUE_FULL', 'internal lease table full', { 'Retry-After': '1' }));
    }
    stats.add('admitted');
    stats.add('active', 1);
    log.write({ event: 'admitted', level: 'debug', conn: id, client, active: semaphore.held, waiting: semaphore.waiting });
    open.delete(socket); // after the transfer the socket is the worker's; this handle is destroyed
    serving
      .serve({ socket, lease, id, client })
      .catch((err: Error) => {
        // The worker died with this connection open: its socket died with it. Count and log it.
        stats.add('workerErrors');
        log.write({ event: 'worker-error', level: 'error', conn: id, client, error: err.message });
      })
      .finally(() => {
        // Exactly once: if the worker did not release the permit, this does.
        if (leases.retire(lease, semaphore)) stats.add('active', -1);
      });
  }

  const server = net.createServer({ pauseOnConnect: true, noDelay: true }, onConnection);
  server.on('error', (err) => log.write({ event: 'listener-error', level: 'error', error: err.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  log.write({
    event: 'started',
    listen: `${address.address}:${address.port}`,
    workers: serving.threads,
    maxClients: options.maxClients,
    maxWaiting: options.maxWaiting,
    queueTimeout: formatDuration(options.queueTimeoutMs),
    idleTimeout: formatDuration(options.idleTimeoutMs),
    connectPorts: formatPortList(options.connectPorts),
    blocklist: options.blocklistFile ? `${options.blocklistFile} (${blocklist.rules.length} domains)` : 'none',
    node: process.versions.node,
  });

  let closing: Promise<{ closedAtDeadline: number }> | undefined;
  return {
    address,
    shared,
    async reload() {
      if (!options.blocklistFile) return void log.write({ event: 'reload', why: 'no --blocklist file to reload' });
      try {
        const next = await loadBlocklist(options.blocklistFile);
        policy.postMessage({ blocklist: next.rules } satisfies PolicyUpdate);
        log.write({ event: 'reload', blocklist: options.blocklistFile, domains: next.rules.length });
      } catch (err) {
        log.write({ event: 'reload-failed', level: 'error', error: (err as Error).message, kept: 'the previous blocklist' });
      }
    },
    close(graceMs = options.shutdownGraceMs) {
      closing ??= (async () => {
        log.write({ event: 'stopping', active: semaphore.held, waiting: semaphore.waiting, graceMs });
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of open) socket.destroy(); // still queued: never admitted
        const deadline = Date.now() + graceMs;
        while (semaphore.held > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        const closedAtDeadline = semaphore.held;
        await serving.close(); // ends worker threads, and with them any connection still open
        await stopped;
        log.write({ event: 'stopped', closedAtDeadline, accepted: stats.get('accepted'), requests: stats.get('requests') });
        policy.close();
        await logger.flush();
        return { closedAtDeadline };
      })();
      return closing;
    },
  };
}
