// The effective configuration every thread runs with: plain data, cloned into each thread. Its fields
// are derived from the option table (option-table.ts: each option's `field` and type), so the type and
// the table cannot drift apart; what each field means is the option's help text there.
import { OPTION_LIST, OPTIONS, type OptionDecl, type OptionName } from './option-table.ts';

type Table = typeof OPTIONS;
type ValueOf<D> = D extends OptionDecl<string, infer T> ? T : never;

/** Set inside proxyd, not by a flag or the config file. */
interface InternalOptions {
  /** Bytes of the shared log ring. */
  logRingBytes: number;
}

type Flatten<T> = { [K in keyof T]: T[K] };

export type ProxyOptions = Flatten<{ -readonly [N in keyof Table as Table[N]['field']]: ValueOf<Table[N]> } & InternalOptions>;

export type LogLevel = ProxyOptions['logLevel'];
export const LOG_LEVELS: readonly LogLevel[] = OPTIONS['log-level'].type.choices as readonly LogLevel[];

const INTERNAL_DEFAULTS: InternalOptions = { logRingBytes: 4 * 1024 * 1024 };

/** Every option at its default: the table's defaults and the internal ones. */
export const DEFAULTS: ProxyOptions = {
  ...(Object.fromEntries(OPTION_LIST.map((o) => [o.field, o.default])) as Omit<ProxyOptions, keyof InternalOptions>),
  ...INTERNAL_DEFAULTS,
};

/** Values keyed by option name → the same values keyed by ProxyOptions field (only the keys given). */
export function byField(values: Partial<Record<OptionName, unknown>>): Partial<ProxyOptions> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) out[OPTIONS[name as OptionName].field] = value;
  return out as Partial<ProxyOptions>;
}
