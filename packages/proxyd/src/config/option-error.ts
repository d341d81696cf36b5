// A bad option, as data: which option, where it was written (a flag or the config file), the bad text
// and the problem. Callers branch on the type and read the fields; the one-line message is made from
// them here, and only here.
import type { z } from 'zod';
import type { OptionName } from './option-table.ts';

export type OptionSource = 'flag' | 'config';

export interface OptionProblem {
  /** The option at fault; undefined when the config file as a whole is (unreadable, not JSON, unknown key). */
  option?: OptionName | undefined;
  source: OptionSource;
  /** The config file, when source is 'config'. */
  file?: string | undefined;
  /** The sentence without its subject: about `value` when that is set, else about the option. */
  problem: string;
  /** The bad text the problem is about. */
  value?: string | undefined;
}

export class OptionError extends Error {
  override name = 'OptionError';
  readonly option: OptionName | undefined;
  readonly source: OptionSource;
  readonly file: string | undefined;
  readonly problem: string;
  readonly value: string | undefined;

  constructor(p: OptionProblem) {
    super(formatOptionProblem(p));
    this.option = p.option;
    this.source = p.source;
    this.file = p.file;
    this.problem = p.problem;
    this.value = p.value;
  }
}

/**
 * `--port must be a whole number …`, `--queue-timeout: "soon" is not a duration …`,
 * `config FILE: key "idle-timeout": "forever" is not a duration …`, `config FILE: not valid JSON …`.
 */
export function formatOptionProblem(p: OptionProblem): string {
  const where = p.source === 'config' ? `config ${p.file}: ` : '';
  if (p.option === undefined) return `${where}${p.problem}`;
  const subject = p.source === 'config' ? `key "${p.option}"` : `--${p.option}`;
  return `${where}${subject}${p.value === undefined ? ' ' : `: "${p.value}" `}${p.problem}`;
}

/** The OptionError for a zod issue from an option's schema (option-type.ts puts the bad text in params.value). */
export function optionErrorFromIssue(issue: z.core.$ZodIssue, where: { option: OptionName; source: OptionSource; file?: string }): OptionError {
  const value = issue.code === 'custom' && typeof issue.params?.value === 'string' ? issue.params.value : undefined;
  return new OptionError({ ...where, problem: issue.message, value });
}
