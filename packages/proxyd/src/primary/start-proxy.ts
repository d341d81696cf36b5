/**
 * The primary thread: accept, admit, hand over. It owns the listening socket, the shared memory, the
 * pool of serving threads and the logger thread; it never parses HTTP itself.
 *
 *   accept (paused) → client ACL → semaphore permit (FIFO; 503 when the queue is full or too slow) →
 *   transfer the socket to a worker → the worker serves it and releases the permit on close.
 */
import net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { formatDuration } from '../config/duration.ts';
import type { ProxyOptions } from '../config/options.ts';
import { formatPortList } from '../config/port-list.ts';
import { splitReload } from '../config/flags.ts';
import { parseBlocklist } from '../policy/blocklist.ts';
import { createClientAcl, type ClientAcl } from '../policy/client-acl.ts';
import { inList, LOOPBACK, PRIVATE, rule } from '../policy/address-rules.ts';
import { POLICY_CHANNEL, type CloseAll, type PolicyUpdate } from '../messages/policy-channel.ts';
import { rawRefusal } from '../policy/refusals.ts';
import { LEVEL_RANK } from '../memory/event-log.ts';
import { createSharedState, type SharedState } from '../memory/shared-state.ts';
import { admit } from './admission.ts';
import { loadBlocklist, loadTls, loadUsers } from './load-files.ts';
import { startLoggerThread, type LogSummary } from './start-logger.ts';
import { WaitHistogram } from './wait-histogram.ts';
import { startServing } from './serving.ts';

export interface RunningProxy {
  /** Where it listens. */
  address: net.AddressInfo;
  shared: SharedState;
  /** The options in force now (a reload changes the live ones). */
  readonly options: ProxyOptions;
  /** How long connections waited for a permit. */
  waits: WaitHistogram;
  /** The logger thread's latest aggregate: top hosts and clients, recent lines. */
  summary(): LogSummary;
  /** True once serving threads are up and until shutdown begins. */
  readonly ready: boolean;
  /** Who may use the proxy, in words (for the start-up banner). */
  access: string;
  /** Set when the proxy listens on a public address yet only local clients may use it. */
  accessWarning: string | undefined;
  /**
   * Apply new options (from a re-read config file; default: the running ones) and re-read the
   * blocklist and auth file. What can change live does, for new requests; what cannot is logged as
   * needing a restart. A bad file keeps everything as it was.
   */
  reload(next?: ProxyOptions): Promise<void>;
  /** Log that a reload could not even produce options (bad config file). */
  reloadFailed(message: string): void;
  /** Stop accepting, let open connections finish up to `graceMs`, close the rest, flush the log. */
  close(graceMs?: number): Promise<{ closedAtDeadline: number }>;
}

const LOCAL_RANGES = rule('local', [...LOOPBACK, ...PRIVATE]);

/** This machine's interface addresses: a connection to one of them on our port is a loop. */
function localAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => typeof a === 'string');
}

function accessWarning(host: string, acl: ClientAcl): string | undefined {
  const listensPublicly = host === '0.0.0.0' || host === '::' || (net.isIP(host) !== 0 && !inList(LOCAL_RANGES.list, host));
  if (!listensPublicly || acl.open) return undefined;
  return `listening on ${host}, but only loopback and private-range clients may connect: remote clients will be refused. ` +
    'Allow them with --allow-client CIDR (e.g. your address/32), or require a login with --auth-file.';
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  // Every file is read and checked before anything starts.
  const blocklist = options.blocklistFile ? await loadBlocklist(options.blocklistFile) : parseBlocklist('');
  const users = options.authFile ? await loadUsers(options.authFile) : undefined;
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
  const tlsFiles = options.tlsCert && options.tlsKey ? await loadTls(options.tlsCert, options.tlsKey) : undefined;
  let acl = createClientAcl(options.allowClient, users !== undefined);
  let current = options;

  const shared = createSharedState(options);
  const { stats, log, leases, semaphore } = shared;
  stats.set('logLevel', LEVEL_RANK[options.logLevel]);

  // Listen first (the workers must know our port to refuse loops), holding connections until ready.
  let onConnection: (socket: net.Socket) => void = (socket) => early.push(socket);
  const early: net.Socket[] = [];
  // No noDelay here: the serving thread sets TCP_NODELAY on the connection it gets (connection-task.ts);
  // setting it here too was a second setsockopt on the same socket for every connection.
  const server = net.createServer({ pauseOnConnect: true }, (socket) => onConnection(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  server.on('error', (err) => log.write({ event: 'listener-error', level: 'error', error: err.message }));

  const logger = startLoggerThread(shared, options);
  shared.workers.claim(); // row 0 of the thread table: the primary's own event loop
  const viaToken = `proxyd-${randomBytes(4).toString('hex')}`;
  let serving;
  try {
    serving = await startServing(shared, options, {
      blocklist: blocklist.rules,
      users: users ? [...users] : undefined,
      tls: tlsFiles,
      viaToken,
      ownPorts: [address.port],
      localAddresses: localAddresses(),
    });
  } catch (err) {
    server.close();
    await logger.flush();
    throw err;
  }
  const policy = new BroadcastChannel(POLICY_CHANNEL);
  policy.unref();

  let nextId = 0;
  const open = new Set<net.Socket>();
  const waits = new WaitHistogram();

  function accept(socket: net.Socket): void {
    const id = ++nextId;
    const addr = socket.remoteAddress ?? '';
    const client = `${addr}:${socket.remotePort}`;
    stats.add('accepted');
    socket.on('error', () => {}); // a client that resets while queued must not crash the primary
    if (!acl.allows(addr)) {
      // Refused at accept: no permit, no thread, no byte read. Said once in the log.
      stats.add('clientsDenied');
      log.write({ event: 'client-denied', level: 'warn', conn: id, client, why: 'address outside --allow-client' });
      return void socket.destroy();
    }
    log.write({ event: 'accepted', level: 'debug', conn: id, client });
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    void admit(shared, current, socket, id, client, waits).then((result) => {
      if (result === 'admitted') handOver(socket, id, client, addr);
    });
  }

  function handOver(socket: net.Socket, id: number, client: string, addr: string): void {
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
    serving!
      .serve({ socket, lease, id, client, address: addr })
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

  onConnection = accept;
  for (const socket of early.splice(0)) accept(socket);

  const access = acl.describe();
  const warning = accessWarning(options.host, acl);
  log.write({
    event: 'started',
    listen: `${address.address}:${address.port}`,
    tls: Boolean(tlsFiles),
    workers: serving.threads,
    maxClients: options.maxClients,
    maxWaiting: options.maxWaiting,
    queueTimeout: formatDuration(options.queueTimeoutMs),
    idleTimeout: formatDuration(options.idleTimeoutMs),
    connectPorts: formatPortList(options.connectPorts),
    clients: access,
    auth: users ? `${options.authFile} (${users.size} users)` : 'off',
    blocklist: options.blocklistFile ? `${options.blocklistFile} (${blocklist.rules.length} domains)` : 'none',
    node: process.versions.node,
  });
  if (warning) log.write({ event: 'access-warning', level: 'warn', message: warning });

  let closing: Promise<{ closedAtDeadline: number }> | undefined;
  const running: RunningProxy = {
    address,
    shared,
    get options() {
      return current;
    },
    waits,
    summary: () => logger.summary(),
    get ready() {
      return closing === undefined;
    },
    access,
    accessWarning: warning,
    reloadFailed(message: string) {
      log.write({ event: 'reload-failed', level: 'error', error: message, kept: 'the running configuration' });
    },
    async reload(next = current) {
      const { applied, changedLive, needRestart } = splitReload(current, next);
      try {
        const nextBlocklist = applied.blocklistFile ? await loadBlocklist(applied.blocklistFile) : parseBlocklist('');
        const nextUsers = applied.authFile ? await loadUsers(applied.authFile) : undefined;
        acl = createClientAcl(applied.allowClient, nextUsers !== undefined);
        current = applied;
        policy.postMessage({ type: 'policy', blocklist: nextBlocklist.rules, users: nextUsers ? [...nextUsers] : undefined, options: applied } satisfies PolicyUpdate);
        stats.set('logLevel', LEVEL_RANK[applied.logLevel]); // every thread, the logger too, reads it there
        log.write({
          event: 'reload',
          changed: changedLive.join(',') || 'nothing',
          blocklist: applied.blocklistFile ?? 'none',
          domains: nextBlocklist.rules.length,
          users: nextUsers?.size,
          clients: acl.describe(),
        });
        if (needRestart.length) {
          log.write({ event: 'reload-needs-restart', level: 'warn', keys: needRestart.join(','), why: 'these options take effect at the next start' });
        }
      } catch (err) {
        log.write({ event: 'reload-failed', level: 'error', error: (err as Error).message, kept: 'the running configuration' });
      }
    },
    close(graceMs = current.shutdownGraceMs) {
      closing ??= (async () => {
        log.write({ event: 'stopping', active: semaphore.held, waiting: semaphore.waiting, graceMs });
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of open) socket.destroy(); // still queued: never admitted
        const deadline = Date.now() + graceMs;
        while (semaphore.held > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        const closedAtDeadline = semaphore.held;
        if (closedAtDeadline > 0) {
          // Past the grace period: the workers close what is left, so that each connection still ends
          // (and is logged) in its own thread before the threads go.
          policy.postMessage({ type: 'close-all' } satisfies CloseAll);
          const hardDeadline = Date.now() + 2000;
          while (semaphore.held > 0 && Date.now() < hardDeadline) await new Promise((r) => setTimeout(r, 10));
        }
        await serving!.close(); // ends the worker threads
        await stopped;
        log.write({ event: 'stopped', closedAtDeadline, accepted: stats.get('accepted'), requests: stats.get('requests') });
        policy.close();
        await logger.flush();
        return { closedAtDeadline };
      })();
      return closing;
    },
  };
  return running;
}
