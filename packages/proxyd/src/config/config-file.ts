/**
 * The config file: JSON whose keys are the flag names (`"max-clients": 256`, `"allow-client":
 * ["203.0.113.7/32"]`). The whole file is checked against a schema (zod) before anything starts: an
 * unknown key, a wrong type or an impossible value is one line naming the key. Values then go through
 * the same validation as flags (to-options.ts).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FLAG_NAMES, FLAGS, type FlagName, type RawOptions } from './flags.ts';
import { OptionError } from './to-options.ts';

const scalar = z.union([z.string(), z.number().finite()]).transform(String);
const list = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

const shape = Object.fromEntries(FLAG_NAMES.map((name) => [name, (FLAGS[name].kind === 'list' ? list : scalar).optional()]));
const schema = z.object(shape).strict();

export function parseConfigText(text: string, file: string): RawOptions {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new OptionError(`config ${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new OptionError(`config ${file}: must be a JSON object of options`);
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new OptionError(`config ${file}: unknown key "${issue.keys[0]}" (the keys are the flag names, see proxyd --help)`);
    }
    const key = String(issue.path[0] ?? '');
    const expected = FLAGS[key as FlagName]?.kind === 'list' ? 'a string or a list of strings' : 'a string or a number';
    throw new OptionError(`config ${file}: key "${key}" must be ${expected}`);
  }
  const raw: RawOptions = {};
  for (const [k, v] of Object.entries(result.data)) if (v !== undefined) raw[k as FlagName] = v as string | string[];
  return raw;
}

export function loadConfigFile(file: string): RawOptions {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OptionError(`config ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
  return parseConfigText(text, file);
}
