/**
 * What an option's type is: one zod codec that decodes what a user writes — a flag's text, or a
 * config-file string or number — into the typed value, and encodes a typed value back into what a
 * config file would say (the default --help shows, and check-config's output). Flags and the config
 * file go through the same schema, so they cannot accept different things.
 *
 * A parser answers with data (Parsed), never by throwing: a bad value becomes a zod issue whose
 * message is the problem and whose params carry the bad text; option-error.ts turns that issue into an
 * OptionError naming the option. The parsers themselves never name an option — the table does.
 */
import { z } from 'zod';

/**
 * A parser's answer. On failure, `problem` is a sentence without its subject. With `value` it is
 * about that text (`"soon"` + `is not a duration`); without, it is about the option (`must be a whole
 * number from 0 to 65535, got "abc"`).
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string; value?: string };

/** What may be written for an option: a flag's text, a config-file string or number, or a list. */
export type Written = string | number | string[];

export interface OptionType<T> {
  /** Decodes what is written into T (z.safeParse), encodes T into text (z.encode). */
  readonly schema: z.ZodType<T, Written>;
  /** A list: the flag may be repeated, the config file may give a JSON list. */
  readonly repeatable: boolean;
  /** The values --help lists and yargs enforces, for a choice. */
  readonly choices?: readonly string[];
}

const SCALAR = z.union([z.string(), z.number()], { error: 'must be a string or a number' });
export const LIST = z.union([z.string(), z.array(z.string())], { error: 'must be a string or a list of strings' });

/** The zod issue for a parser's problem: `params.value` keeps the bad text as data. */
export function pushProblem(issues: z.core.$ZodRawIssue[], input: unknown, failed: { problem: string; value?: string }): void {
  issues.push({ code: 'custom', message: failed.problem, input, params: failed.value === undefined ? {} : { value: failed.value } });
}

/**
 * A one-value type: `parse` reads the text (a config-file number is read as its text), `show` writes it
 * back — as text, or as a number where a config file would write a JSON number (counts, ports).
 */
export function scalarType<T>(spec: { out: z.ZodType<T, T>; parse: (text: string) => Parsed<T>; show: (value: T) => string | number; choices?: readonly string[] }): OptionType<T> {
  const schema = z.codec(SCALAR, spec.out, {
    decode: (input, payload) => {
      const parsed = spec.parse(String(input));
      if (parsed.ok) return parsed.value;
      pushProblem(payload.issues, input, parsed);
      return z.NEVER;
    },
    encode: (value) => spec.show(value),
  });
  return { schema, repeatable: false, ...(spec.choices ? { choices: spec.choices } : {}) };
}

/**
 * A list of strings: a repeated flag, a JSON list, or either with comma-separated entries
 * (`--allow-client a,b --allow-client c`); blanks are dropped, each entry is checked by `check`.
 */
export function listType(check: (entry: string) => Parsed<string>): OptionType<string[]> {
  const schema = z.codec(LIST, z.array(z.string()), {
    decode: (input, payload) => {
      const entries = (Array.isArray(input) ? input : [input]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
      for (const entry of entries) {
        const parsed = check(entry);
        if (!parsed.ok) {
          pushProblem(payload.issues, input, parsed);
          return z.NEVER;
        }
      }
      return entries;
    },
    encode: (list) => list,
  });
  return { schema, repeatable: true };
}

/** Free text; `nonEmpty` refuses "" and blanks, `clean` rewrites what is accepted. */
export function textType({ nonEmpty = false, clean = (t: string) => t }: { nonEmpty?: boolean; clean?: (text: string) => string } = {}): OptionType<string> {
  return scalarType({
    out: z.string(),
    parse: (text) => (nonEmpty && text.trim() === '' ? { ok: false, problem: 'must not be empty' } : { ok: true, value: clean(text) }),
    show: (text) => text,
  });
}

/** A file path that may be left out: unset or "" is undefined. Whether the file exists is checked when it is read. */
export function optionalPathType(): OptionType<string | undefined> {
  return scalarType({
    out: z.string().optional(),
    parse: (text) => ({ ok: true, value: text === '' ? undefined : text }),
    show: (path) => path ?? '',
  });
}

/** One of a fixed list of words. */
export function choiceType<const C extends readonly [string, ...string[]]>(choices: C): OptionType<C[number]> {
  const isChoice = (text: string): text is C[number] => choices.includes(text);
  return scalarType({
    out: z.enum(choices),
    parse: (text) => (isChoice(text) ? { ok: true, value: text } : { ok: false, problem: `must be one of ${choices.join(', ')}, got "${text}"` }),
    show: (choice) => choice,
    choices,
  });
}

/**
 * An on/off switch that may be written bare: `--never-direct` (yargs hands over "") means on; `on`,
 * `off`, `true`, `false` and a JSON boolean-like text are accepted too.
 */
export function switchType(): OptionType<boolean> {
  return scalarType({
    out: z.boolean(),
    parse: (text) =>
      text === '' || text === 'on' || text === 'true' ? { ok: true, value: true }
      : text === 'off' || text === 'false' ? { ok: true, value: false }
      : { ok: false, problem: `must be on or off, got "${text}"` },
    show: (on) => (on ? 'on' : 'off'),
  });
}
