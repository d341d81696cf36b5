// The command-line side of the option table: one yargs option per entry (its --help line and how it
// shows the default), and the flags given read back through the entry's schema.
import type { Options } from 'yargs';
import { z } from 'zod';
import { optionErrorFromIssue } from './option-error.ts';
import { OPTION_LIST, type OptionName } from './option-table.ts';
import { byField, type ProxyOptions } from './options.ts';

/** Flags as yargs hands them over: text, or a list of texts for a repeated flag. */
export type RawFlags = Partial<Record<OptionName, string | string[]>>;

/**
 * yargs options for every entry. No yargs `default`: an absent flag must stay absent so the config file
 * can set it; --help shows the default through `defaultDescription` instead.
 */
export function flagDefinitions(): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const o of OPTION_LIST) {
    const shown = o.helpDefault ?? (o.default === undefined ? undefined : JSON.stringify(z.encode(o.type.schema, o.default)));
    out[o.name] = {
      type: 'string',
      array: o.type.repeatable,
      describe: `${o.help}${o.live ? '' : ' [restart to change]'}`,
      ...(shown !== undefined ? { defaultDescription: shown } : {}),
      ...(o.type.choices ? { choices: [...o.type.choices] } : {}),
    };
  }
  return out;
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

/** Raw flags → typed values; the first bad one throws an OptionError (source 'flag'). */
export function parseFlags(raw: RawFlags): Partial<ProxyOptions> {
  const values: Partial<Record<OptionName, unknown>> = {};
  for (const o of OPTION_LIST) {
    let text = raw[o.name];
    if (text === undefined) continue;
    // A one-value flag given twice arrives as a list; read as "a,b" it fails (or, for a port list, adds up) as it always has.
    if (Array.isArray(text) && !o.type.repeatable) text = text.join(',');
    const result = o.type.schema.safeParse(text);
    if (!result.success) throw optionErrorFromIssue(result.error.issues[0]!, { option: o.name, source: 'flag' });
    values[o.name] = result.data;
  }
  return byField(values);
}
