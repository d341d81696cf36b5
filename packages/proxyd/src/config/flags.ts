// The command-line side of the option table: one yargs option per entry (its --help line and how it
// shows the default), and the flags given read back through the entry's schema. Reading argv as a
// whole (unknown flags, the command, --config) is command-line.ts.
import type { Options } from 'yargs';
import { z } from 'zod';
import { OptionError, optionErrorFromIssue } from './option-error.ts';
import { OPTION_LIST, type OptionName } from './option-table.ts';
import { byField, type ProxyOptions } from './options.ts';

/** Flags as yargs hands them over: text, or a list of texts for a repeated flag. */
export type RawFlags = Partial<Record<OptionName, string | string[]>>;

/**
 * yargs options for every entry. No yargs `default`: an absent flag must stay absent so the config file
 * can set it; --help shows the default through `defaultDescription` instead. No yargs `choices` either:
 * yargs would check them itself and print a three-line block; the option's codec checks them (for the
 * config file too) and says it in one line, so the choices are only written into the help text.
 */
export function flagDefinitions(): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const o of OPTION_LIST) {
    const shown = o.helpDefault ?? (o.default === undefined ? 'none' : JSON.stringify(z.encode(o.type.schema, o.default)));
    const choices = o.type.choices ? ` [choices: ${o.type.choices.map((c) => JSON.stringify(c)).join(', ')}]` : '';
    out[o.name] = {
      type: 'string',
      array: o.type.repeatable,
      describe: `${o.help}${choices}${o.live ? '' : ' [restart to change]'}`,
      ...(shown !== undefined ? { defaultDescription: shown } : {}),
    };
  }
  return out;
}

/** `was given twice (8081, 8082); give it once`: the problem with a one-value flag written more than once. */
export function givenMoreThanOnce(values: readonly string[]): string {
  return `was given ${values.length === 2 ? 'twice' : `${values.length} times`} (${values.join(', ')}); give it once`;
}

/** The flags given on the command line (yargs' parsed arguments), as raw text. */
export function explicitFlags(args: Record<string, unknown>): RawFlags {
  const raw: RawFlags = {};
  for (const { name } of OPTION_LIST) {
    const v = args[name];
    if (v !== undefined) raw[name] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return raw;
}

/**
 * Raw flags → typed values; the first bad one throws an OptionError (source 'flag').
 *
 * A one-value flag given twice arrives as a list, and is refused rather than read as its last value:
 * in a long ExecStart line or a wrapper script, a second --port is more often a mistake than an
 * override, and "last wins" would run silently on the value nobody meant. Overrides have their own
 * layer (flags over the config file). A list flag (--allow-client) may be repeated; its entries add up.
 */
export function parseFlags(raw: RawFlags): Partial<ProxyOptions> {
  const values: Partial<Record<OptionName, unknown>> = {};
  for (const o of OPTION_LIST) {
    const text = raw[o.name];
    if (text === undefined) continue;
    if (Array.isArray(text) && !o.type.repeatable) throw new OptionError({ option: o.name, source: 'flag', problem: givenMoreThanOnce(text) });
    const result = o.type.schema.safeParse(text);
    if (!result.success) throw optionErrorFromIssue(result.error.issues[0]!, { option: o.name, source: 'flag' });
    values[o.name] = result.data;
  }
  return byField(values);
}
