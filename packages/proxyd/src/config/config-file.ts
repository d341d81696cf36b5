/**
 * The config file: JSON whose keys are the flag names (`"max-clients": 256`, `"allow-client":
 * ["203.0.113.7/32"]`). Its schema is the option table's: each key's value goes through the same zod
 * codec as the flag, so `"queue-timeout": 30` and `"queue-timeout": "30s"` both become 30000. The whole
 * file is checked before anything starts; the first problem is an OptionError naming the key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { OptionError, optionErrorFromIssue } from './option-error.ts';
import { OPTION_LIST, OPTIONS, type OptionName } from './option-table.ts';
import { byField, type ProxyOptions } from './options.ts';

/** Every option, optional; any other key is refused. */
export const CONFIG_SCHEMA = z.strictObject(Object.fromEntries(OPTION_LIST.map((o) => [o.name, o.type.schema.optional()])));

export function parseConfigText(text: string, file: string): Partial<ProxyOptions> {
  const fileError = (problem: string) => new OptionError({ source: 'config', file, problem });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fileError(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw fileError('must be a JSON object of options');
  const result = CONFIG_SCHEMA.safeParse(json);
  if (!result.success) {
    // An unknown key first: a misspelt key is more likely the cause than any value.
    const unknown = result.error.issues.find((i) => i.code === 'unrecognized_keys');
    if (unknown) throw fileError(`unknown key "${unknown.keys[0]}" (the keys are the flag names, see proxyd --help)`);
    const issue = result.error.issues[0]!;
    throw optionErrorFromIssue(issue, { option: issue.path[0] as OptionName, source: 'config', file });
  }
  // The keys the file sets, even where the value decodes to undefined ("admin": "off").
  const set = Object.keys(json).filter((k): k is OptionName => k in OPTIONS);
  return byField(Object.fromEntries(set.map((name) => [name, result.data[name]])));
}

export function loadConfigFile(file: string): Partial<ProxyOptions> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OptionError({ source: 'config', file, problem: code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message });
  }
  return parseConfigText(text, file);
}
