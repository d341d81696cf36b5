/**
 * The command line, read. yargs splits argv, prints --help and --version, and checks nothing else:
 * every mistake it would catch (an unknown flag, a stray argument, a word outside a flag's choices) is
 * caught here or by the option table instead, so that each is one line in proxyd's words. yargs' own
 * messages are blocks ("Invalid values:\n  Argument: log-level, Given: …") and accept what proxyd must
 * not: with its defaults `--maxClients 3` is a camelCase copy of --max-clients and `--no-port` is
 * "port: false".
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { loadConfigFile } from './config-file.ts';
import { explicitFlags, flagDefinitions, givenMoreThanOnce, parseFlags, type RawFlags } from './flags.ts';
import { OptionError } from './option-error.ts';
import { OPTIONS } from './option-table.ts';
import type { ProxyOptions } from './options.ts';
import { resolveOptions } from './resolve-options.ts';

export type Command = 'run' | 'check-config';

/** What the user asked for: which command, which config file, and the flags as written. */
export interface CommandLine {
  command: Command;
  configFile: string | undefined;
  flags: RawFlags;
}

/** The flags that are not options: --config says where options are; --help (-h) and --version are yargs'. */
const OTHER_FLAGS: ReadonlySet<string> = new Set(['config', 'help', 'h', 'version']);

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/** `proxyd 0.1.0 (Node.js 24.21.0)`: this package's version and the runtime under it. */
export function versionLine(): string {
  const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
  return `proxyd ${version} (Node.js ${process.versions.node})`;
}

export function buildParser(argv: string[]): Argv {
  return (
    yargs(argv)
      .scriptName('proxyd')
      .usage(
        'proxyd [options]\nproxyd check-config [--config FILE] [options]\n\n' +
          'A forward HTTP/HTTPS proxy: a primary thread accepts, a semaphore admits, worker threads serve.\n' +
          'Durations take 500ms, 30s, 2m, 1h (a bare number is seconds). A one-value flag is given once.',
      )
      .command('$0', 'run the proxy')
      .command('check-config', 'check the options and every file they name as start-up would, then print the effective options as a config file')
      // Only what the user wrote, as written: no camelCase copies, no --no-x negation, no dotted objects.
      .parserConfiguration({ 'camel-case-expansion': false, 'boolean-negation': false, 'dot-notation': false })
      .option('config', { type: 'string', defaultDescription: 'none', describe: 'JSON config file whose keys are these flag names; flags override it (the service uses /etc/proxyd/proxyd.json)' })
      .options(flagDefinitions())
      .help()
      .alias('help', 'h')
      .version(versionLine())
      .wrap(Math.min(110, process.stdout.columns || 110))
  );
}

/** A key yargs parsed, as the user wrote it: `--port`, `-x`. */
function asFlag(key: string): string {
  return `${key.length === 1 ? '-' : '--'}${key}`;
}

function isKnownFlag(key: string): boolean {
  return OTHER_FLAGS.has(key) || Object.hasOwn(OPTIONS, key);
}

/** yargs' parsed arguments → the command line; anything that is not a flag or the one command is an OptionError. */
export function readCommandLine(args: Record<string, unknown>): CommandLine {
  for (const key of Object.keys(args)) {
    if (key === '_' || key === '$0') continue;
    if (!isKnownFlag(key)) throw new OptionError({ source: 'flag', problem: `unknown option ${asFlag(key)} (see proxyd --help)` });
    // yargs acts on --help and --version itself; one that reaches here had a value (--help=x), which it ignored.
    if (key === 'help' || key === 'h' || key === 'version') throw new OptionError({ source: 'flag', problem: `${asFlag(key)} takes no value` });
  }
  const words = (args._ as unknown[]).map(String);
  const command: Command = words[0] === 'check-config' ? 'check-config' : 'run';
  const stray = words[command === 'run' ? 0 : 1];
  if (stray !== undefined) {
    // Most often a config file without --config: say where it goes.
    throw new OptionError({ source: 'flag', problem: `unexpected argument "${stray}": the one command is check-config, and a config file goes after --config (see proxyd --help)` });
  }
  return { command, configFile: configFlag(args.config), flags: explicitFlags(args) };
}

/**
 * What to say when yargs itself throws. It does on a flag named like an Object.prototype member
 * (`--constructor 1`: its validation looks the key up in a plain object), so the first --name in argv
 * that is not a flag is the likely cause; `--` ends the flags.
 */
export function unreadableCommandLine(argv: readonly string[], err: Error): OptionError {
  for (const word of argv) {
    if (word === '--') break;
    const name = /^--([^=]+)/.exec(word)?.[1];
    if (name !== undefined && !isKnownFlag(name)) return new OptionError({ source: 'flag', problem: `unknown option --${name} (see proxyd --help)` });
  }
  return new OptionError({ source: 'flag', problem: `cannot read the command line: ${err.message} (see proxyd --help)` });
}

function configFlag(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new OptionError({ source: 'flag', problem: `--config ${givenMoreThanOnce(value.map(String))}` });
  // `--config` at the end of the line arrives as "": no file is not the same as no --config.
  if (String(value) === '') throw new OptionError({ source: 'flag', problem: '--config needs a file name' });
  return String(value);
}

/**
 * Defaults < config file < flags. A bad value or a broken rule is an OptionError that names the option
 * and where it was written (flag or file). SIGHUP calls this again: the file is re-read, the flags win.
 */
export function effectiveOptions({ configFile, flags }: Pick<CommandLine, 'configFile' | 'flags'>): ProxyOptions {
  const config = configFile === undefined ? undefined : { file: configFile, values: loadConfigFile(configFile) };
  return resolveOptions(config, parseFlags(flags));
}
