/**
 * proxyd's command line. `proxyd [options]` runs the proxy; `proxyd check-config [--config FILE]`
 * validates and prints the effective configuration. Options come from three layers: defaults < the
 * config file (--config) < flags. A bad value anywhere is one line and exit 2, before anything starts.
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP re-reads the config file, the blocklist and the auth
 * file, applies what can change live and says what needs a restart.
 */
import yargs, { type Argv } from 'yargs';
import { loadConfigFile } from './config/config-file.ts';
import { formatDuration } from './config/duration.ts';
import { explicitFlags, flagDefinitions, parseFlags, type RawFlags } from './config/flags.ts';
import { OptionError } from './config/option-error.ts';
import type { ProxyOptions } from './config/options.ts';
import { resolveOptions } from './config/resolve-options.ts';
import { startProxy } from './primary/start-proxy.ts';
import { startAdminServer } from './admin/admin-server.ts';

// Every option's flag comes from the option table (config/option-table.ts, via flags.ts); --config is
// the one flag that is not an option: it says where the others may be.
function addOptions(y: Argv): Argv {
  return y
    .option('config', { type: 'string', describe: 'JSON config file whose keys are these flag names; flags override it (the service uses /etc/proxyd/proxyd.json)' })
    .options(flagDefinitions());
}

export function buildParser(argv: string[]): Argv {
  return addOptions(
    yargs(argv)
      .scriptName('proxyd')
      .usage(
        'proxyd [options]\nproxyd check-config [--config FILE] [options]\n\n' +
          'A forward HTTP/HTTPS proxy: a primary thread accepts, a semaphore admits, worker threads serve.\n' +
          'Durations take 500ms, 30s, 2m, 1h (a bare number is seconds).',
      )
      .command('$0', 'run the proxy')
      .command('check-config', 'validate the configuration and print the effective options as JSON'),
  )
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110));
}

/**
 * Defaults < config file < flags. A bad value or a broken rule is an OptionError that names the option
 * and where it was written (flag or file), as data: `fail` prints its message.
 */
export function effectiveOptions(configFile: string | undefined, flags: RawFlags): ProxyOptions {
  const config = configFile ? { file: configFile, values: loadConfigFile(configFile) } : undefined;
  return resolveOptions(config, parseFlags(flags));
}

function fail(message: string): never {
  process.stderr.write(`proxyd: ${message}\n(see proxyd --help)\n`);
  process.exit(2);
}

export async function main(argv: string[]): Promise<void> {
  const parser = buildParser(argv).fail((msg, err) => fail(err?.message ?? msg));
  const args = (await parser.parseAsync()) as Record<string, unknown>;
  const command = (args._ as unknown[])[0];
  const configFile = args.config === undefined ? undefined : String(args.config);
  const flags = explicitFlags(args);
  let options: ProxyOptions;
  try {
    options = effectiveOptions(configFile, flags);
  } catch (err) {
    if (err instanceof OptionError) fail(err.message);
    throw err;
  }
  if (command === 'check-config') {
    // Every option, an unset one as null (JSON.stringify would leave out an undefined field).
    process.stdout.write(`${JSON.stringify(options, (_key, value: unknown) => (value === undefined ? null : value), 2)}\n`);
    process.stdout.write(`proxyd: configuration OK${configFile ? ` (${configFile} + flags)` : ' (defaults + flags)'}\n`);
    return;
  }

  let proxy;
  try {
    proxy = await startProxy(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') fail(`cannot listen on ${options.host}:${options.port}: the address is in use`);
    if (e.code === 'EACCES') fail(`cannot listen on ${options.host}:${options.port}: permission denied (ports below 1024 need privileges)`);
    if (e.code === 'EADDRNOTAVAIL') fail(`cannot listen on ${options.host}: no such address on this machine`);
    fail(e.message);
  }
  let admin;
  try {
    admin = await startAdminServer(proxy);
  } catch (err) {
    await proxy.close(0);
    const e = err as NodeJS.ErrnoException;
    fail(e.code === 'EADDRINUSE' ? `cannot start the admin server on ${options.admin?.host}:${options.admin?.port}: the address is in use (--admin off to run without it)` : e.message);
  }
  const { address } = proxy;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const scheme = options.tlsCert ? 'https' : 'http';
  process.stdout.write(
    `proxyd listening on ${scheme}://${shown}:${address.port} — ${options.workers === 0 ? 'serving on the primary thread' : `${options.workers} worker threads`}, ` +
      `${options.maxClients} clients at once, ${options.maxWaiting} may wait; log: ${options.logFile}\n` +
      `who may use it: ${proxy.access}\n` +
      (admin ? `dashboard and metrics: http://${admin.address.family === 'IPv6' ? `[${admin.address.address}]` : admin.address.address}:${admin.address.port}/\n` : '') +
      `try: curl --proxy ${scheme}://${shown}:${address.port}${options.tlsCert ? ' --proxy-insecure' : ''} http://example.com/\n`,
  );
  if (proxy.accessWarning) process.stderr.write(`proxyd: warning: ${proxy.accessWarning}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`proxyd: ${signal}: draining open connections (up to ${formatDuration(proxy.options.shutdownGraceMs)})\n`);
    void admin?.close();
    void proxy.close().then(({ closedAtDeadline }) => {
      process.stdout.write(`proxyd: stopped${closedAtDeadline ? ` (${closedAtDeadline} connections closed at the deadline)` : ''}\n`);
      process.exitCode = 0;
      setTimeout(() => process.exit(0), 100).unref();
    });
  };
  const reload = () => {
    let next: ProxyOptions;
    try {
      next = effectiveOptions(configFile, flags); // flags still win over the file
    } catch (err) {
      return void proxy.reloadFailed((err as Error).message);
    }
    void proxy.reload(next);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', reload);
}

