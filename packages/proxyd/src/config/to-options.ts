// Raw option values (strings and lists, from flags and the config file) → validated ProxyOptions.
// Every problem is one line naming the option: OptionError.
import net from 'node:net';
import { addCidr } from '../policy/address-rules.ts';
import { parseDuration } from './duration.ts';
import { defaultRaw, FLAGS, type FlagName, type RawOptions } from './flags.ts';
import { DEFAULTS, type LogLevel, type ProxyOptions } from './options.ts';
import { parsePortList } from './port-list.ts';

export class OptionError extends Error {
  override name = 'OptionError';
}

function str(raw: RawOptions, name: FlagName): string | undefined {
  const v = raw[name];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : String(v);
}

function wholeNumber(raw: RawOptions, name: FlagName, min: number, max: number): number {
  const value = str(raw, name) ?? '';
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new OptionError(`--${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

function duration(raw: RawOptions, name: FlagName, allowZero = false): number {
  const value = str(raw, name) ?? '';
  if (allowZero && value.trim() === '0') return 0;
  try {
    return parseDuration(value, `--${name}`);
  } catch (err) {
    throw new OptionError((err as Error).message);
  }
}

function ports(raw: RawOptions, name: FlagName, noneAllowed: boolean) {
  const value = str(raw, name) ?? '';
  if (noneAllowed && value.trim() === 'none') return [];
  try {
    return parsePortList(value, `--${name}`);
  } catch (err) {
    throw new OptionError((err as Error).message);
  }
}

function cidrs(raw: RawOptions, name: 'allow-client' | 'allow-dest'): string[] {
  const value = raw[name];
  const list = (Array.isArray(value) ? value : value === undefined ? [] : [value])
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  for (const cidr of list) {
    if (name === 'allow-client' && cidr.toLowerCase() === 'any') continue;
    try {
      addCidr(new net.BlockList(), cidr, `--${name}`);
    } catch (err) {
      throw new OptionError((err as Error).message);
    }
  }
  return list;
}

/** Defaults < `layers` in order (config file, then flags) → options. */
export function resolveOptions(...layers: RawOptions[]): ProxyOptions {
  return toOptions(Object.assign(defaultRaw(), ...layers));
}

export function toOptions(raw: RawOptions): ProxyOptions {
  const host = str(raw, 'host') ?? '';
  if (host.trim() === '') throw new OptionError('--host must not be empty');
  const logLevel = str(raw, 'log-level') as LogLevel;
  if (!FLAGS['log-level'].choices.includes(logLevel)) throw new OptionError(`--log-level must be one of ${FLAGS['log-level'].choices.join(', ')}, got "${logLevel}"`);
  if (Boolean(raw['tls-cert']) !== Boolean(raw['tls-key'])) throw new OptionError('--tls-cert and --tls-key go together');
  const optionalFile = (name: FlagName) => {
    const v = str(raw, name);
    return v === undefined || v === '' ? undefined : v;
  };
  return {
    host,
    port: wholeNumber(raw, 'port', 0, 65535),
    workers: wholeNumber(raw, 'workers', 0, 256),
    maxClients: wholeNumber(raw, 'max-clients', 1, 100_000),
    maxWaiting: wholeNumber(raw, 'max-waiting', 0, 1_000_000),
    queueTimeoutMs: duration(raw, 'queue-timeout'),
    idleTimeoutMs: duration(raw, 'idle-timeout'),
    upstreamTimeoutMs: duration(raw, 'upstream-timeout'),
    headersTimeoutMs: duration(raw, 'headers-timeout'),
    connectPorts: ports(raw, 'connect-ports', false),
    blockedHttpPorts: ports(raw, 'blocked-http-ports', true),
    allowClient: cidrs(raw, 'allow-client'),
    allowDest: cidrs(raw, 'allow-dest'),
    authFile: optionalFile('auth-file'),
    authRealm: (str(raw, 'auth-realm') ?? DEFAULTS.authRealm).replace(/["\\]/g, ''),
    tlsCert: optionalFile('tls-cert'),
    tlsKey: optionalFile('tls-key'),
    maxHeaderBytes: wholeNumber(raw, 'max-header-size', 1024, 1024 * 1024),
    maxUrlBytes: wholeNumber(raw, 'max-url-length', 64, 1024 * 1024),
    blocklistFile: optionalFile('blocklist'),
    admin: adminAddress(str(raw, 'admin') ?? 'off'),
    logFile: str(raw, 'log-file') ?? DEFAULTS.logFile,
    logLevel,
    logMaxBytes: wholeNumber(raw, 'log-max-size', 0, 2 ** 40),
    logMaxFiles: wholeNumber(raw, 'log-max-files', 1, 1000),
    shutdownGraceMs: duration(raw, 'shutdown-grace'),
    statusIntervalMs: duration(raw, 'status-interval', true),
    logRingBytes: DEFAULTS.logRingBytes,
  };
}

function adminAddress(text: string): { host: string; port: number } | undefined {
  if (text.trim() === 'off') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new OptionError(`--admin must be host:port (e.g. 127.0.0.1:9090) or "off", got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}
