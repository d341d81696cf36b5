/**
 * The primary thread: accept, admit, hand over. It owns the listening socket, the shared memory, the
 * pool of serving threads and the logger thread; it never parses HTTP itself.
 *
 *   accept (paused) → client ACL → semaphore permit (FIFO; 503 when the queue is full or too slow) →
 *   transfer the socket to a worker → the worker serves it and releases the permit on close.
 *
 * This file starts the parts in order and returns the handle the CLI holds; each job is a module of its
 * own: listener.ts, accept.ts (+ admission.ts), hand-over.ts, reload.ts, shutdown.ts.
 */
import type net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { formatDuration } from '../config/duration.ts';
import type { ProxyOptions } from '../config/options.ts';
import { formatPortList } from '../config/port-list.ts';
import { LEVEL_RANK } from '../memory/event-log.ts';
import { createSharedState, type SharedState } from '../memory/shared-state.ts';
import type { AnalyticsRange, AnalyticsReport, LogSummary } from '../messages/logger-messages.ts';
import { POLICY_CHANNEL } from '../messages/policy-channel.ts';
import { createBalancerMatcher, createClientAcl } from '../policy/client-acl.ts';
import { openCacheLocation } from '../cache/cache-file.ts';
import { formatByteSize } from '../config/byte-size.ts';
import type { Users } from '../policy/htpasswd.ts';
import { ClientLimits } from '../limits/client-limits.ts';
import { acceptConnection } from './accept.ts';
import { ClientCaps } from './client-caps.ts';
import type { FleetBridge } from './fleet-bridge.ts';
import { redactRedisUrl } from '../config/redis-url.ts';
import { countOpenDescriptors, FdBudget, readOpenFileLimit } from './fd-budget.ts';
import { agentReply, startAgentCheck, type AgentCheck, type AgentPhase } from './agent-check.ts';
import { accessWarning, allowDestWarning, describeDestinations, localAddresses } from './access.ts';
import { listenPaused } from './listener.ts';
import { createLogFiles, loadStartupFiles, type StartupFiles } from './load-files.ts';
import type { PrimaryState } from './primary-state.ts';
import { reloadFailed, reloadProxy } from './reload.ts';
import { startServing } from './serving.ts';
import { Grace, shutdown } from './shutdown.ts';
import { startLoggerThread } from './start-logger.ts';
import { WaitHistogram } from './wait-histogram.ts';
import { plural } from './words.ts';
import { settleHeapSoon } from '../memory/settle-heap.ts';

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
  /** The analytics over a range, from the logger thread (rejects with --analytics off). */
  analytics(range: AnalyticsRange): Promise<AnalyticsReport>;
  /** The users of --auth-file now in force (a reload re-reads them), when authentication is on. */
  users(): Users | undefined;
  /** True once serving threads are up and until shutdown begins. */
  readonly ready: boolean;
  /** Per-client limits and bans: what the admin server lists, and lifting a ban. */
  readonly limits: Pick<ClientLimits, 'bans' | 'lift' | 'hottest'>;
  /** Who may use the proxy, in words (for the start-up banner). */
  access: string;
  /** Where it may connect, in words (for the start-up banner). */
  destinations: string;
  /** Set when the proxy listens on a public address yet only local clients may use it. */
  accessWarning: string | undefined;
  /** Set when --allow-dest names ranges without loopback in them (they change nothing). */
  allowDestWarning: string | undefined;
  /** The open-file limit and how many clients fit in it, in words (for the start-up banner). */
  openFiles: string;
  /** Set when --max-clients and --max-waiting need more descriptors than the open-file limit leaves. */
  openFilesWarning: string | undefined;
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
  /** End the grace period now (a second stop signal): what is still open is closed; returns how many are. */
  hurry(): number;
}

/** `files`: what loadStartupFiles read for these options already (cli.ts does, before the admin port). */
export async function startProxy(options: ProxyOptions, files?: StartupFiles): Promise<RunningProxy> {
  // Every file is read and checked before anything starts, as check-config reads them. (The option table
  // already refuses a lone --tls-cert or --tls-key; this guards callers that build options themselves.)
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
  const { blocklist, users, tls } = files ?? (await loadStartupFiles(options));
  await createLogFiles(options);

  const shared = createSharedState(options);
  shared.stats.set('logLevel', LEVEL_RANK[options.logLevel]);
  const listener = await listenPaused(options.host, options.port);
  // The agent answers "down" from now until the serving threads are up, and "drain" once close() begins.
  let phase: AgentPhase = 'starting';
  const agent = options.agentCheck ? await startAgentCheck(options.agentCheck, () => agentReply(phase, shared.semaphore.free, shared.semaphore.permits)) : undefined;
  listener.server.on('error', (err) => shared.log.write({ event: 'listener-error', level: 'error', error: err.message }));
  const logger = startLoggerThread(shared, options);
  const cache = openCacheLocation(options, shared.cachePresence);
  if (cache.problem) shared.log.write({ event: 'cache-error', level: 'error', error: `${cache.problem}; serving without a cache` });
  if (cache.location) {
    shared.stats.set('cacheEntries', cache.location.entries);
    shared.stats.set('cacheBytes', cache.location.bytes);
  }
  shared.workers.claim(); // row 0 of the thread table: the primary's own event loop
  let serving;
  try {
    serving = await startServing(shared, options, {
      blocklist: blocklist.rules,
      users: users ? [...users] : undefined,
      tls,
      viaToken: `proxyd-${randomBytes(4).toString('hex')}`,
      ownPorts: [listener.address.port],
      localAddresses: localAddresses(),
      cacheFile: cache.location?.file,
    });
  } catch (err) {
    cache.location?.dispose();
    listener.server.close();
    await agent?.close();
    await logger.flush();
    throw err;
  }
  const policy = new BroadcastChannel(POLICY_CHANNEL);
  policy.unref();
  // Counted once the threads, listeners, log and cache files are open: what the proxy holds before any
  // client. The logger thread opens its files asynchronously; counted before they were, the budget
  // took them for clients' descriptors later and refused up to 3 clients early (open-files.test.ts).
  // Clients that connected while it started are clients, not the proxy's own (a restart under load).
  await logger.ready;
  const openNow = countOpenDescriptors();
  const fdBudget = new FdBudget(readOpenFileLimit(), openNow === undefined ? 0 : openNow - listener.held);
  shared.stats.set('openFileLimit', fdBudget.limit ?? 0);

  const state: PrimaryState = {
    shared,
    options,
    acl: createClientAcl(options.allowClient, users !== undefined),
    balancers: options.proxyProtocol === 'on' ? createBalancerMatcher(options.proxyProtocolFrom) : undefined,
    users,
    blocklist: blocklist.rules,
    waits: new WaitHistogram(),
    serving,
    policy,
    queued: new Set(),
    tasks: new Set(),
    lastConnectionId: 0,
    limits: new ClientLimits(shared, () => state.options),
    caps: new ClientCaps(),
    fdBudget,
  };
  // --redis: bans and rate limits shared with the fleet (fleet-bridge.ts). Loaded only then, and not
  // awaited: importing the redis client took 0.4–2 s on the loaded test machine, and a store that is away
  // must not hold the start-up either; the local limits serve meanwhile.
  const redis = options.redis;
  const fleet: Promise<FleetBridge | undefined> = redis
    ? import('./fleet-bridge.ts').then(
        (m) => m.startFleetBridge({ url: redis, instance: `${os.hostname()}:${listener.address.port}`, limits: state.limits, stats: shared.stats, log: shared.log, rate: () => state.limits.requestRate() }),
        (err: unknown) => {
          shared.log.write({ event: 'fleet-store-down', level: 'error', error: err instanceof Error ? err.message : String(err), message: 'the fleet bridge could not be loaded: limiting locally' });
          return undefined;
        },
      )
    : Promise.resolve(undefined);
  listener.open((socket) => acceptConnection(state, socket));
  phase = 'serving';

  const access = state.acl.describe();
  const warning = accessWarning(options.host, state.acl);
  const openFiles = describeOpenFiles(fdBudget);
  const openFilesWarning = openFilesShortfall(fdBudget, options);
  logStarted(state, listener.address, { threads: serving.threads, access, tls: tls !== undefined, blocklistDomains: blocklist.rules.length, agent: agent?.address, cache: describeCache(options, cache.location), openFiles });
  if (warning) shared.log.write({ event: 'access-warning', level: 'warn', message: warning });
  const destWarning = allowDestWarning(options.allowDest);
  if (destWarning) shared.log.write({ event: 'allow-dest-warning', level: 'warn', message: destWarning });
  if (openFilesWarning) shared.log.write({ event: 'open-files-warning', level: 'warn', limit: fdBudget.limit, message: openFilesWarning });
  settleHeapSoon(2_000); // after the admin server's modules, which cli.ts loads next (memory/settle-heap.ts)

  let closing: Promise<{ closedAtDeadline: number }> | undefined;
  const grace = new Grace();
  return {
    address: listener.address,
    shared,
    get options() {
      return state.options;
    },
    waits: state.waits,
    summary: () => logger.summary(),
    analytics: (range) => logger.analytics(range),
    users: () => state.users,
    get ready() {
      return closing === undefined;
    },
    limits: state.limits,
    access,
    destinations: describeDestinations(options),
    accessWarning: warning,
    allowDestWarning: destWarning,
    openFiles,
    openFilesWarning,
    reload: (next = state.options) => reloadProxy(state, next),
    reloadFailed: (message) => reloadFailed(state, message),
    close: (graceMs = state.options.shutdownGraceMs) => (closing ??= closeProxy(state, listener.server, logger, graceMs, grace, agent, fleet, () => (phase = 'draining')).finally(() => cache.location?.dispose())),
    hurry() {
      grace.hurry();
      return state.shared.semaphore.held;
    },
  };
}

/** Shut down (shutdown.ts) with the agent saying "drain" throughout the grace period; then close the agent. */
async function closeProxy(state: PrimaryState, server: net.Server, logger: Parameters<typeof shutdown>[2], graceMs: number, grace: Grace, agent: AgentCheck | undefined, fleet: Promise<FleetBridge | undefined>, drain: () => void): Promise<{ closedAtDeadline: number }> {
  drain();
  const result = await shutdown(state, server, logger, graceMs, grace);
  await agent?.close();
  await (await fleet)?.close();
  return result;
}

/** The 'started' record: what this proxy runs with, in one line of the log. */
function logStarted(state: PrimaryState, address: net.AddressInfo, run: { threads: number; access: string; tls: boolean; blocklistDomains: number; agent: net.AddressInfo | undefined; cache: string; openFiles: string }): void {
  const { options, users } = state;
  state.shared.log.write({
    event: 'started',
    listen: `${address.address}:${address.port}`,
    tls: run.tls,
    workers: run.threads,
    maxClients: options.maxClients,
    maxWaiting: options.maxWaiting,
    queueTimeout: formatDuration(options.queueTimeoutMs),
    idleTimeout: formatDuration(options.idleTimeoutMs),
    connectPorts: formatPortList(options.connectPorts),
    clients: run.access,
    destinations: describeDestinations(options),
    auth: users ? `${options.authFile} (${plural(users.size, 'user')})` : 'off',
    blocklist: options.blocklistFile ? `${options.blocklistFile} (${plural(run.blocklistDomains, 'domain')})` : 'none',
    cache: run.cache,
    openFiles: run.openFiles,
    node: process.versions.node,
    pid: process.pid,
    agentCheck: run.agent ? `${run.agent.address}:${run.agent.port}` : 'off',
    redis: options.redis ? redactRedisUrl(options.redis) : 'off',
  });
}

/** The cache in words, for the 'started' record. */
function describeCache(options: ProxyOptions, location: { mode: string; file: string; entries: number } | undefined): string {
  if (options.cache === 'off') return 'off';
  if (!location) return 'off (its file could not be used: see the cache-error record)';
  const held = location.mode === 'disk' ? `, ${plural(location.entries, 'entry', 'entries')} kept` : '';
  return `${location.mode} ${formatByteSize(options.cacheMaxBytes)} (objects up to ${formatByteSize(options.cacheMaxObjectBytes)}) in ${location.file}${held}`;
}

/**
 * 60312 → "60,312". Not toLocaleString: the first number formatted through Intl makes ICU read ~4.5 MiB
 * of its locale data from the node binary, all of it resident from then on (issue 20, memory-breakdown.ts).
 */
function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}

/** The open-file limit in words: how many clients fit, two descriptors each. */
function describeOpenFiles(budget: FdBudget): string {
  if (budget.limit === undefined) return 'limit not known (no /proc/self/limits, or unlimited): no budget kept';
  return `limit ${thousands(budget.limit)}: room for ${thousands(budget.clients)} clients at 2 descriptors each (${budget.reserve} kept for the proxy)`;
}

/** The warning when every permit held plus a full queue would not fit under the open-file limit. */
function openFilesShortfall(budget: FdBudget, options: ProxyOptions): string | undefined {
  const needed = FdBudget.needed(options.maxClients, options.maxWaiting);
  if (budget.limit === undefined || needed <= budget.budget) return undefined;
  const want = needed + budget.reserve;
  return (
    `--max-clients ${options.maxClients} and --max-waiting ${options.maxWaiting} need up to ${thousands(want)} open files, but the limit is ${thousands(budget.limit)}: ` +
    `past about ${thousands(budget.clients)} clients new ones are refused 503 at accept. ` +
    `Raise it with \`ulimit -n ${want}\` in the shell that starts proxyd (Node.js raises its soft limit to the hard one: the hard limit is the one that counts) or LimitNOFILE= in a systemd unit (the shipped unit sets 65536), or lower --max-clients`
  );
}
